"""The channel: which ORIGINAL wording may hide behind an OBSERVED (spun) span.

A spinner replaces a word or phrase (1-4 tokens) by another member of its term set.
For an observed span of normalized tokens (``text.normalize_token``), the channel
lists candidate originals with features; a language model picks among them.

Sources (see models/MODEL_CARD.md for licenses):
  wordnet        Open English WordNet synsets (all members of a synset are interchangeable)
  moby           Moby thesaurus (headword ~ each synonym)
  roget          Roget 1911 (terms within one semicolon group of a paragraph, and with the
                 paragraph's first term)
  fallows_soule  Fallows 1898 / Soule 1871 synonym dictionaries (headword ~ synonym)
  tortured       "tortured phrases" from science papers (observed=tortured -> original=correct)
  glove          GloVe 6B 50d nearest neighbours among frequent words (cosine >= 0.6)
  numbers        number words <-> digits, ordinals (three <-> 3, second <-> 2nd)
  spelling       British <-> American spelling variants (rule-generated, both real words)
  function       a short hand-written list of generic function-word synonyms
                 (despite ~ in spite of, because of ~ due to ...)
  inflection     flag: the pair was produced by re-inflecting a lemma-level pair
                 (mention~say gives mentioned~said); always set along with the pair's source

Relations are symmetric except ``tortured``.  Everything is lowercase; the decoder carries
the case of the observed text over to the original.

This module only reads a built channel; building one (``unspin build-channel``) lives in
``unspin.build.channel``.

>>> channel = Channel.load_default()                 # doctest: +SKIP
>>> [c.original for c in channel.candidates(("in", "spite", "of"))][:3]   # doctest: +SKIP
['despite', 'against', 'for']
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .text import tokenize

ALL_SOURCES = ("wordnet", "moby", "roget", "fallows_soule", "tortured", "glove", "numbers",
               "spelling", "function", "inflection")
# One bit per source in the stored masks.
SOURCE_BITS = {s: 1 << i for i, s in enumerate(ALL_SOURCES)}
# Sources that do not by themselves say two terms are interchangeable: distributional
# neighbours and the re-inflection flag. Every other source is curated (a thesaurus, a
# hand-written set or a rule); see `curated_sources`.
DISTRIBUTIONAL_SOURCES = frozenset({"glove", "inflection"})
# Curated sets trusted for function words (thesauri link prepositions loosely: "at" ~ "by").
FUNCTION_WORD_SOURCES = frozenset({"function", "numbers", "spelling"})

DEFAULT_PATH = Path(__file__).parent / "models" / "channel.npz"
# Longest observed span (in tokens) a channel keys.
MAX_LEN = 4
# Keys whose candidate lists stay cached (bounded: a long batch sees unbounded vocabulary).
CACHE_KEYS = 100_000


@dataclass(frozen=True)
class Candidate:
    """One possible original for an observed span (listed by `Channel.candidates`).

    >>> Candidate("said", frozenset({"moby"}), cosine=0.575, zipf_observed=4.75, zipf_original=6.0)
    ... # doctest: +NORMALIZE_WHITESPACE
    Candidate(original='said', sources=frozenset({'moby'}), cosine=0.575,
              zipf_observed=4.75, zipf_original=6.0)
    >>> Channel.load_default().candidates("stated")[0].original       # doctest: +SKIP
    'said'
    """

    original: str              # space-joined normalized tokens, e.g. "according to"
    sources: frozenset[str]    # which resources relate observed and original
    cosine: float              # GloVe cosine observed~original (mean vector for phrases), 0 if unknown
    zipf_observed: float       # wordfreq zipf of the observed span
    zipf_original: float       # wordfreq zipf of the original


def norm_phrase(phrase: str) -> str:
    """A phrase as the channel keys it: normalized tokens joined by single spaces.

    >>> norm_phrase("According_to"), norm_phrase("Don’t  stop")
    ('according to', "don 't stop")
    """
    return " ".join(t.norm for t in tokenize(phrase.replace("_", " ")))


def curated_sources(sources: Iterable[str]) -> frozenset[str]:
    """The curated sources (thesauri, hand-written sets, rules) among `sources`.

    >>> sorted(curated_sources({"moby", "glove", "inflection"}))
    ['moby']
    """
    return frozenset(sources) - DISTRIBUTIONAL_SOURCES


@functools.lru_cache(maxsize=1 << 12)  # at most 2**len(ALL_SOURCES) masks exist
def mask_to_sources(mask: int) -> frozenset[str]:
    """The source names of a stored bit mask (bits as in `SOURCE_BITS`).

    >>> sorted(mask_to_sources(SOURCE_BITS["moby"] | SOURCE_BITS["glove"]))
    ['glove', 'moby']
    """
    return frozenset(s for s, b in SOURCE_BITS.items() if mask & b)


class Channel:
    """Inverse substitution table: observed span (tuple of normalized tokens) -> candidates.

    Stored as a string table plus CSR arrays (key -> [original ids, source masks, cosines]).

    >>> channel = Channel.load_default()                      # doctest: +SKIP
    >>> len(channel), channel.max_len                          # doctest: +SKIP
    (331955, 4)
    >>> channel.spans(["he", "said", "in", "spite", "of", "it"], 2)   # doctest: +SKIP
    [1, 2, 3]
    """

    def __init__(self, strings: list[str], zipf: np.ndarray, keys: np.ndarray, offsets: np.ndarray,
                 originals: np.ndarray, masks: np.ndarray, cosines: np.ndarray, sources: Sequence[str]):
        self._strings = strings
        self._zipf = np.asarray(zipf, dtype=np.float32)
        self._keys = np.asarray(keys, dtype=np.int64)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._originals = np.asarray(originals, dtype=np.int64)
        self._masks = np.asarray(masks, dtype=np.int64)
        self._cosines = np.asarray(cosines, dtype=np.float32)
        self._sources = tuple(s for s in ALL_SOURCES if s in set(sources))
        self._index: dict[tuple[str, ...], int] = {}
        first: set[str] = set()
        max_len = 1
        for i, k in enumerate(self._keys.tolist()):
            toks = tuple(strings[k].split(" "))
            self._index[toks] = i
            if len(toks) > 1:
                first.add(toks[0])
                max_len = max(max_len, len(toks))
        self.max_len = max_len
        self.multiword_first_tokens: frozenset[str] = frozenset(first)
        self._prefixes: set[tuple[str, ...]] | None = None
        # Bounded: a long batch looks up an unbounded number of keys.
        self._candidates_at = functools.lru_cache(maxsize=CACHE_KEYS)(self._candidates_at_uncached)

    # ---- lookups -------------------------------------------------------------------
    def candidates(self, observed: tuple[str, ...] | Sequence[str] | str) -> list[Candidate]:
        """Candidate originals for an observed span of normalized tokens; [] if unknown.

        Ranked: deterministic rewrites (numbers/spelling/tortured) first, then by score =
        number of sources + GloVe cosine + 0.25 * zipf of the original.  A plain string is split on spaces.

        >>> best = Channel.load_default().candidates("in spite of")[0]    # doctest: +SKIP
        >>> best.original, sorted(best.sources), best.cosine              # doctest: +SKIP
        ('despite', ['fallows_soule', 'function', 'moby'], 0.866)
        """
        if isinstance(observed, str):
            observed = tuple(observed.split())
        elif not isinstance(observed, tuple):
            observed = tuple(observed)
        i = self._index.get(observed)
        if i is None:
            observed = tuple(t.lower() for t in observed)
            i = self._index.get(observed)
            if i is None:
                return []
        return list(self._candidates_at(i))

    def _candidates_at_uncached(self, i: int) -> tuple[Candidate, ...]:
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        zo = float(self._zipf[self._keys[i]])
        return tuple(Candidate(self._strings[o], mask_to_sources(m), round(float(c), 3), round(zo, 2),
                               round(float(self._zipf[o]), 2))
                     for o, m, c in zip(self._originals[lo:hi].tolist(), self._masks[lo:hi].tolist(),
                                        self._cosines[lo:hi].tolist()))

    def originals(self, observed: tuple[str, ...]) -> list[tuple[str, frozenset[str]]]:
        """(original, sources) for an observed span, in candidate order: a lighter `candidates()`
        for callers that need no features (tracing looks up many spans).

        >>> original, sources = Channel.load_default().originals(("stated",))[0]   # doctest: +SKIP
        >>> original, sorted(sources)                                             # doctest: +SKIP
        ('said', ['fallows_soule', 'inflection', 'moby', 'roget', 'wordnet'])
        """
        i = self._index.get(observed)
        if i is None:
            return []
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        return [(self._strings[o], mask_to_sources(m))
                for o, m in zip(self._originals[lo:hi].tolist(), self._masks[lo:hi].tolist())]

    def iter_originals(self, observed: tuple[str, ...]) -> Iterator[tuple[str, frozenset[str]]]:
        """`originals` one at a time, for callers that stop after the first few (a word's
        synonym class needs four of its hundreds).

        >>> next(Channel.load_default().iter_originals(("stated",)))[0]   # doctest: +SKIP
        'said'
        """
        i = self._index.get(observed)
        if i is None:
            return
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        for start in range(lo, hi, 8):  # a few at a time: most callers stop within the first eight
            stop = min(hi, start + 8)
            for o, m in zip(self._originals[start:stop].tolist(), self._masks[start:stop].tolist()):
                yield self._strings[o], mask_to_sources(m)

    def __contains__(self, observed) -> bool:
        return tuple(observed) in self._index

    def has_prefix(self, prefix: tuple[str, ...] | Sequence[str]) -> bool:
        """True if some key LONGER than `prefix` starts with it (so the decoder should look further).

        >>> Channel.load_default().has_prefix(("in", "spite"))    # doctest: +SKIP
        True
        """
        prefix = tuple(prefix)
        if len(prefix) == 1:
            return prefix[0] in self.multiword_first_tokens
        if self._prefixes is None:
            ps: set[tuple[str, ...]] = set()
            for toks in self._index:
                for n in range(1, len(toks)):
                    ps.add(toks[:n])
            self._prefixes = ps
        return prefix in self._prefixes

    def spans(self, tokens: Sequence[str], start: int) -> list[int]:
        """Lengths n (1..max_len) such that tokens[start:start+n] is a key.

        >>> Channel.load_default().spans(["in", "spite", "of", "it"], 0)   # doctest: +SKIP
        [1, 2, 3]
        """
        out = []
        for n in range(1, self.max_len + 1):
            if start + n > len(tokens):
                break
            key = tuple(tokens[start:start + n])
            if key in self._index:
                out.append(n)
            if n < self.max_len and not self.has_prefix(key):
                break
        return out

    def keys(self) -> Iterable[tuple[str, ...]]:
        """The observed keys (tuples of normalized tokens), in stored order.

        >>> next(iter(Channel.load_default().keys()))            # doctest: +SKIP
        ('abaxial',)
        """
        return self._index.keys()

    def __len__(self) -> int:
        return len(self._index)

    @property
    def n_entries(self) -> int:
        """Number of (observed key, original) pairs; `len(channel)` counts keys.

        >>> Channel.load_default().n_entries                      # doctest: +SKIP
        3845822
        """
        return int(self._offsets[-1])

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources this channel was built from, in `ALL_SOURCES` order.

        >>> Channel.load_default().sources[:3]                    # doctest: +SKIP
        ('wordnet', 'moby', 'roget')
        """
        return self._sources

    # ---- persistence ---------------------------------------------------------------
    def __reduce__(self):
        """Pickled by its tables (for worker processes); the lookup caches are rebuilt there.
        The shipped channel travels by name."""
        if Channel.load_default.cache_info().currsize and self is Channel.load_default():
            return (Channel.load_default, ())
        return (Channel, (self._strings, self._zipf, self._keys, self._offsets, self._originals, self._masks,
                          self._cosines, self._sources))

    def save(self, path: str | os.PathLike) -> None:
        """Write the channel as a compressed .npz (cosines and zipf quantized to 8 bits); read it with `load`.

        >>> channel.save("channel.npz"); len(Channel.load("channel.npz")) == len(channel)   # doctest: +SKIP
        True
        """
        blob = "\n".join(self._strings).encode("utf-8")
        meta = json.dumps({"version": 1, "sources": list(self._sources)}).encode()
        cos8 = np.clip(np.round(self._cosines * 127), -127, 127).astype(np.int8)
        z8 = np.clip(np.round(self._zipf * 20), 0, 255).astype(np.uint8)
        width = np.uint32 if len(self._strings) >= 1 << 16 else np.uint16
        with open(path, "wb") as f:
            np.savez_compressed(
                f, meta=np.frombuffer(meta, dtype=np.uint8), strings=np.frombuffer(blob, dtype=np.uint8),
                zipf=z8, keys=self._keys.astype(width), counts=np.diff(self._offsets).astype(np.uint8),
                originals=self._originals.astype(width), masks=self._masks.astype(np.uint16), cosines=cos8)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Channel":
        """A channel written by `save` (or `unspin build-channel`).

        >>> Channel.load("unspin/models/channel.npz").max_len   # doctest: +SKIP
        4
        """
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            strings = z["strings"].tobytes().decode("utf-8").split("\n")
            offsets = np.zeros(len(z["keys"]) + 1, dtype=np.int64)
            np.cumsum(z["counts"].astype(np.int64), out=offsets[1:])
            return cls(strings, z["zipf"].astype(np.float32) / 20, z["keys"], offsets, z["originals"],
                       z["masks"], z["cosines"].astype(np.float32) / 127, meta["sources"])

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load_default(cls) -> "Channel":
        """The channel shipped in the package (loaded once per process).

        >>> Channel.load_default() is Channel.load_default()     # doctest: +SKIP
        True
        """
        return cls.load(DEFAULT_PATH)

