"""Spinner profiles: evidence about which substitutions one spinner makes, pooled over its output.

A spinner uses one dictionary, so every occurrence of `stated` in its output comes from the
same small set of originals, and several observed words (`stated`, `mentioned`) point to the
same original (`said`). A `SpinnerProfile` pools the decoder's posteriors over many
occurrences (the other sentences of one document, or many documents from one source) and
turns them into a prior for the decoder: a log10 bonus for each (observed key, original) pair.

>>> profile = SpinnerProfile()
>>> profile.add(("stated",), "said", 0.8)
>>> profile.add(("mentioned",), "said", 0.6)
>>> prior = profile.prior()
>>> prior.bonus(("stated",), "said") > prior.bonus(("voiced",), "said") > 0
True
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .decode import SentenceDecoding

Key = tuple[str, ...]


@dataclass(frozen=True)
class ProfileWeights:
    """How pooled evidence becomes a log10 channel bonus.

    bonus(key, original) = same_key * log10(1 + mass of this pair) * share
                         + same_original * log10(1 + mass of this original under other keys),
    capped at `cap`. Masses are sums of decoder posteriors (one occurrence counts at most 1);
    `share` is the pair's mass over how often its observed words occur in the pooled texts (1 where
    that count is unknown): "stated" read as "said" 30 times in 35 is the spinner's habit, "the"
    read as "new" 20 times in 6,000 is noise.

    >>> ProfileWeights()
    ProfileWeights(same_key=1.0, same_original=0.5, cap=1.5)
    >>> SpinnerProfile({("stated",): {"said": 2.0}}).prior(ProfileWeights(cap=0.3)).bonus(("stated",), "said")
    0.3
    """

    same_key: float = 1.0
    same_original: float = 0.5
    cap: float = 1.5


@dataclass
class ProfilePrior:
    """A `decode.ChannelPrior`: the decoder asks it for a bonus per candidate.

    Usually made by `SpinnerProfile.prior`; `originals` holds each original's mass summed over keys:

    >>> prior = ProfilePrior({("stated",): {"said": 2.0}}, {"said": 3.0}, ProfileWeights())
    >>> bool(prior), round(prior.bonus(("stated",), "said"), 3)
    (True, 0.628)
    >>> rare = ProfilePrior({("the",): {"new": 2.0}}, {"new": 2.0}, ProfileWeights(), {("the",): 400})
    >>> round(rare.bonus(("the",), "new"), 3)    # 2 readings in 400 occurrences: next to nothing
    0.002
    """

    pairs: dict[Key, dict[str, float]]
    originals: dict[str, float]
    weights: ProfileWeights
    key_counts: dict[Key, float] = field(default_factory=dict)

    def bonus(self, key: Key, original: str) -> float:
        """log10 bonus for reading `original` behind the observed `key` (0 without evidence).

        >>> prior = ProfilePrior({("stated",): {"said": 2.0}}, {"said": 3.0}, ProfileWeights())
        >>> round(prior.bonus(("voiced",), "said"), 3), prior.bonus(("stated",), "told")   # other keys' evidence only
        (0.301, 0.0)
        """
        pair = self.pairs.get(key, {}).get(original, 0.0)
        other = self.originals.get(original, 0.0) - pair
        if pair <= 0.0 and other <= 0.0:
            return 0.0
        w = self.weights
        seen = self.key_counts.get(key, 0.0)
        share = min(1.0, pair / seen) if seen > 0 else 1.0
        b = w.same_key * math.log10(1.0 + pair) * share + w.same_original * math.log10(1.0 + max(other, 0.0))
        return min(b, w.cap)

    def known_originals(self, key: Key) -> list[str]:
        """The originals with evidence behind `key`, most evidence first.

        >>> ProfilePrior({("stated",): {"said": 2.0, "told": 0.5}}, {}, ProfileWeights()).known_originals(("stated",))
        ['said', 'told']
        """
        row = self.pairs.get(key)
        return sorted(row, key=lambda o: -row[o]) if row else []

    def __bool__(self) -> bool:
        return bool(self.originals)


@dataclass
class SpinnerProfile:
    """Pooled posterior mass per (observed key, original) pair.

    >>> profile = SpinnerProfile()
    >>> profile.add(("stated",), "said", 0.8)
    >>> profile.add(("stated",), "said", 0.7)
    >>> profile.pairs, len(profile)
    ({('stated',): {'said': 1.5}}, 1)
    """

    pairs: dict[Key, dict[str, float]] = field(default_factory=dict)
    n_documents: int = 0  # how many documents the evidence was pooled over (for the reader)
    # How often each observed key occurs in those documents, read or not (`count_keys`): a pair's
    # mass is weighed by its share of them (`ProfileWeights`).
    key_counts: dict[Key, float] = field(default_factory=dict)

    def add(self, key: Key, original: str, mass: float) -> None:
        """Count `mass` (a posterior, 0-1) of evidence that `original` hides behind `key`.

        >>> profile = SpinnerProfile()
        >>> profile.add(("stated",), "stated", 0.9)     # the identity is no evidence
        >>> profile.add(("stated",), "said", 0.8)
        >>> profile.pairs
        {('stated',): {'said': 0.8}}
        """
        if mass <= 0.0 or original == " ".join(key):
            return
        row = self.pairs.setdefault(tuple(key), {})
        row[original] = row.get(original, 0.0) + mass

    def add_decoding(self, decoding: SentenceDecoding) -> None:
        """Add the posteriors of every decoded change of one sentence (chosen and alternatives).

        >>> profile = SpinnerProfile()
        >>> profile.add_decoding(decoder.decode(next(sentences("The minister stated that the plan would work."))))
        ... # doctest: +SKIP
        >>> [(o, round(m, 3)) for _, o, m in profile.top_pairs()]   # doctest: +SKIP
        [('said', 0.978)]
        """
        for c in decoding.changes:
            key = tuple(t.norm for t in decoding.tokens[c.first:c.last])
            self.add(key, c.original.lower(), c.posterior)
            for alternative, posterior in c.alternatives:
                self.add(key, alternative, posterior)

    @classmethod
    def from_decodings(cls, decodings: Iterable[SentenceDecoding]) -> "SpinnerProfile":
        """A profile pooled over many sentence decodings (`add_decoding` for each).

        >>> text = "The minister stated that the plan would work. She stated it again."
        >>> profile = SpinnerProfile.from_decodings(decoder.decode(s) for s in sentences(text))   # doctest: +SKIP
        >>> [(k, o, round(m, 2)) for k, o, m in profile.top_pairs(1)]                          # doctest: +SKIP
        [('stated', 'said', 1.54)]
        """
        profile = cls()
        decodings = list(decodings)
        for d in decodings:
            profile.add_decoding(d)
        profile.count_keys([t.norm for t in d.tokens] for d in decodings)
        return profile

    def reading_share(self, key: Key, original: str) -> float | None:
        """How often the observed `key` was read as `original` in the pooled texts, as a share of
        all its occurrences (None where the profile has no count of the key: version 1 files).
        For pairs from traced copies it is how often this spinner's `key` stood for `original`.

        >>> profile = SpinnerProfile({("stated",): {"said": 3.0}}, key_counts={("stated",): 4})
        >>> profile.reading_share(("stated",), "said"), profile.reading_share(("stated",), "told")
        (0.75, 0.0)
        """
        seen = self.key_counts.get(tuple(key))
        if not seen:
            return None
        return min(1.0, self.pairs.get(tuple(key), {}).get(original, 0.0) / seen)

    def count_keys(self, sentences: Iterable[Sequence[str]]) -> None:
        """Add to `key_counts` how often each observed key of the profile occurs in `sentences`
        (each a sequence of normalized tokens), whatever it was read as.

        >>> profile = SpinnerProfile({("stated",): {"said": 1.0}})
        >>> profile.count_keys([["she", "stated", "it"], ["he", "stated", "so", "and", "stated", "more"]])
        >>> profile.key_counts
        {('stated',): 3}
        """
        lengths = sorted({len(k) for k in self.pairs})
        if not lengths:
            return
        counts = self.key_counts
        for norms in sentences:
            norms = tuple(norms)
            for i in range(len(norms)):
                for n in lengths:
                    key = norms[i:i + n]
                    if len(key) == n and key in self.pairs:
                        counts[key] = counts.get(key, 0) + 1

    def merged(self, other: "SpinnerProfile", sign: float = 1.0) -> "SpinnerProfile":
        """This profile plus (sign=1) or minus (sign=-1) another; masses below zero are dropped.

        >>> a, b = SpinnerProfile({("stated",): {"said": 1.5}}), SpinnerProfile({("stated",): {"said": 0.5}})
        >>> a.merged(b).pairs, a.merged(b, sign=-1).pairs, b.merged(a, sign=-1).pairs
        ({('stated',): {'said': 2.0}}, {('stated',): {'said': 1.0}}, {})
        """
        out = SpinnerProfile({k: dict(v) for k, v in self.pairs.items()},
                             max(0, self.n_documents + int(sign) * other.n_documents), dict(self.key_counts))
        for key, n in other.key_counts.items():
            m = out.key_counts.get(key, 0) + sign * n
            if m > 0:
                out.key_counts[key] = m
            else:
                out.key_counts.pop(key, None)
        for key, row in other.pairs.items():
            mine = out.pairs.setdefault(key, {})
            for original, mass in row.items():
                m = mine.get(original, 0.0) + sign * mass
                if m > 1e-9:
                    mine[original] = m
                else:
                    mine.pop(original, None)
            if not mine:
                del out.pairs[key]
        return out

    def prior(self, weights: ProfileWeights | None = None) -> ProfilePrior:
        """The decoder prior this evidence gives (`Decoder.decode(tokens, prior=...)`).

        >>> prior = SpinnerProfile({("stated",): {"said": 2.0}, ("noted",): {"said": 1.0}}).prior()
        >>> prior.originals, round(prior.bonus(("stated",), "said"), 3)
        ({'said': 3.0}, 0.628)
        """
        originals: dict[str, float] = {}
        for row in self.pairs.values():
            for original, mass in row.items():
                originals[original] = originals.get(original, 0.0) + mass
        return ProfilePrior(self.pairs, originals, weights or ProfileWeights(), self.key_counts)

    def __len__(self) -> int:
        return sum(len(row) for row in self.pairs.values())

    # -- persistence: a readable JSON file, strongest pairs first ---------------------------
    def top_pairs(self, n: int | None = None) -> list[tuple[str, str, float]]:
        """(observed, original, pooled mass), strongest first; the first `n` if given.

        >>> SpinnerProfile({("stated",): {"said": 1.5, "told": 0.2}, ("noted",): {"said": 0.6}}).top_pairs(2)
        [('stated', 'said', 1.5), ('noted', 'said', 0.6)]
        """
        rows = sorted(((" ".join(k), o, m) for k, row in self.pairs.items() for o, m in row.items()),
                      key=lambda r: (-r[2], r[0], r[1]))
        return rows[:n] if n is not None else rows

    def to_dict(self) -> dict:
        """The JSON-ready form `save` writes (masses rounded to 4 decimals); read back by `from_dict`.

        >>> SpinnerProfile({("stated",): {"said": 1.5}}, n_documents=3).to_dict()   # doctest: +NORMALIZE_WHITESPACE
        {'format': 'unspin-profile', 'version': 2, 'n_documents': 3,
         'pairs': [{'observed': 'stated', 'original': 'said', 'mass': 1.5}]}
        """
        rows = []
        for k, o, m in self.top_pairs():
            row = {"observed": k, "original": o, "mass": round(m, 4)}
            seen = self.key_counts.get(tuple(k.split()))
            if seen is not None:
                row["observed_count"] = round(seen, 4)
            rows.append(row)
        return {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "n_documents": self.n_documents, "pairs": rows}

    def save(self, path: str | os.PathLike) -> None:
        """Write the profile as readable JSON, strongest pairs first; read it back with `load`.

        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "profile.json")
        ...     SpinnerProfile({("stated",): {"said": 1.5}}).save(path)
        ...     SpinnerProfile.load(path).pairs
        {('stated',): {'said': 1.5}}
        """
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict) -> "SpinnerProfile":
        """A profile from `to_dict` output; ValueError for anything else.

        >>> SpinnerProfile.from_dict(SpinnerProfile({("stated",): {"said": 1.5}}).to_dict()).pairs
        {('stated',): {'said': 1.5}}
        >>> SpinnerProfile.from_dict({"format": "other"})
        Traceback (most recent call last):
          ...
        ValueError: not an unspin spinner profile (made by `unspin learn`)
        """
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise ValueError("not an unspin spinner profile (made by `unspin learn`)")
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"spinner profile version {data.get('version')!r}; this unspin reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
        profile = cls(n_documents=int(data.get("n_documents", 0)))
        for row in data.get("pairs", []):
            key = tuple(str(row["observed"]).split())
            profile.add(key, str(row["original"]), float(row["mass"]))
            if "observed_count" in row:  # version 1 has none: its pairs weigh in whole
                profile.key_counts[key] = float(row["observed_count"])
        return profile

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SpinnerProfile":
        """A profile saved by `save` (`unspin learn -o profile.json`); ValueError if unreadable.

        >>> SpinnerProfile.load("no/such/profile.json")      # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        ValueError: no/such/profile.json: cannot read the spinner profile (...)
        """
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the spinner profile ({err})") from None


PROFILE_FORMAT = "unspin-profile"
# Version 2 adds each observed key's count (`observed_count`); version 1 files still load.
PROFILE_VERSION = 2
READABLE_VERSIONS = (1, 2)
