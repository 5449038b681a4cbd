"""Fingerprints of a text that survive synonym spinning: MinHash band keys over what spinners
keep, and the rare terms they keep.

Words are compared in a canonical form (`words_at`): case, punctuation, apostrophes and number
formatting do not matter. Three kinds of keys:

* "imm": MinHash bands of word 3-grams over the text's *immutable* tokens only (function
  words, numbers, capitalized names), which a spinner leaves alone;
* "syn": MinHash bands of word 3-grams over *synonym-class* tokens: each word mapped through
  the channel to the smallest of itself and its top candidates, so `said` and `stated` often agree;
* "term": one key per distinct rare term (`rare_terms`: numbers, names, rare content words),
  the postings of an inverted index.

Fingerprinting is pure (no storage): `Index` stores the band keys, and a corpus scan can
compare them without a database.

>>> fp = Fingerprinter(Channel.load_default())       # doctest: +SKIP
>>> keys, n_words = fp.band_keys("The minister said the plan would cost more.")   # doctest: +SKIP
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
import zlib

import numpy as np

from .lexicon import Channel
from .text import FUNCTION_WORDS, TOKEN_RE, normalize_token

# (kind, shingle size, permutations, rows per band). Immutable-token 3-grams keep a
# Jaccard of ~0.5 under 40-60% spinning (~0.2 at worst: spinners touch names and
# particles too) and ~0 between unrelated texts: 20 bands of 2 rows find a copy at
# Jaccard 0.5 with P = 1 - (1 - 0.25)^20 > 0.99. Synonym-class 3-grams keep less (~0.2):
# 10 bands of 2 rows. Fewer bands than before (63 + 32) because the rare-term postings
# (TERM_BAND) now carry the recall of short, stripped and stitched copies; the bands are
# most of the index's size (bench/trace.md).
KINDS = (("imm", 3, 40, 2), ("syn", 3, 20, 2), ("term", 1, 0, 0))
NUM_PERM = sum(k[2] for k in KINDS)
# The band number of the rare-term postings (kind "term"): one key per distinct rare term.
TERM_BAND = 2000
# A term is "rare" (indexed and looked up) when its wordfreq Zipf frequency is below
# RARE_ZIPF (about 1 in 100,000 words: "pontiff" 2.8, "bells" 3.9, not "soldiers" 4.7), or
# below NAME_ZIPF when it is written capitalized (names: "Francis" 4.4, "Korea" 4.7), or it
# holds a digit. About 20 terms per 90-word paragraph.
RARE_ZIPF = 4.0
NAME_ZIPF = 5.0
# Hashes are 31-bit: SQLite stores them in 4 bytes; a chance collision in a bucket only adds a
# candidate that the alignment then rejects.
HASH_BITS = 31
# How many of a word's single-word channel candidates form its synonym class.
CANON_TOP = 4
# Bound on the per-fingerprinter word caches (a long scan sees millions of word types).
CACHE_WORDS = 200_000
# How many texts' word splits `words_at` keeps (about 20 kB each for a 100-word text), and the
# longest text it keeps one for. A scan's family step meets each member again a few hundred texts
# later: 2,048 kept instead of 256 spared a fifth of its splits (bench/scan.md, session 9).
CACHE_TEXTS = 2048
CACHE_TEXT_CHARS = 200_000

_SPELLING_ONLY = frozenset({"spelling"})
# What is left of a clitic once apostrophes are stripped ("history s", "don t"): not a word.
_CLITIC_REMNANTS = frozenset({"s", "t"})
_DIGIT_GROUP_RE = re.compile(r"\d{3}")


def words_at(text: str) -> list[tuple[str, str, int, int]]:
    """(surface, canonical form, start, end) of the word and number tokens of a text.

    The canonical form makes punctuation, case, apostrophes and number formatting not matter:
    lowercased; numbers without their group commas, and "4, 000" (a group split by a space)
    one number "4000"; "U. N." and "U.N." both "un"; clitics ("'s", "n't") and what stripping
    apostrophes leaves of them ("history s") dropped.

    >>> [w[1] for w in words_at("The U. N. sent 4, 000 troops; history's first.")]
    ['the', 'un', 'sent', '4000', 'troops', 'history', 'first']
    >>> [w[1] for w in words_at("the UN sent 4000 troops history s first")]
    ['the', 'un', 'sent', '4000', 'troops', 'history', 'first']
    >>> words_at("He left.")[1]
    ('left', 'left', 3, 7)
    """
    if len(text) > CACHE_TEXT_CHARS:
        return list(_words_at(text))
    return list(_words_at_cached(text))


def _words_at(text: str) -> tuple[tuple[str, str, int, int], ...]:
    # (text, start, end, kind) straight from the tokenizer's pattern: no Token objects (speed)
    toks = []
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "word" or kind == "number" or kind == "punct" and m.group() in ",.":
            toks.append((m.group(), *m.span(), kind))
    out: list[tuple[str, str, int, int]] = []
    i, n = 0, len(toks)
    while i < n:
        surface, start, end, kind = toks[i]
        if kind == "word":
            if len(surface) == 1 and surface.isupper():
                # "U. N.": single capital letters each followed by ". " run together as one word
                j, letters = i, []
                while (j + 1 < n and len(toks[j][0]) == 1 and toks[j][0].isupper() and toks[j][3] == "word"
                       and toks[j + 1][0] == "." and toks[j + 1][1] == toks[j][2]):
                    letters.append(toks[j][0])
                    j += 2
                    if not (j < n and toks[j][3] == "word" and toks[j][1] == toks[j - 1][2] + 1):
                        break
                if len(letters) >= 2:
                    end = toks[j - 1][2]
                    out.append((text[start:end], "".join(letters).lower(), start, end))
                    i = j
                    continue
            norm = _word_form(surface)
            if not (norm in _CLITIC_REMNANTS and out and out[-1][3] == start - 1):
                out.append((surface, norm, start, end))
        elif kind == "number":
            digits = surface.replace(",", "")
            # "4, 000": a number, a comma, a space, exactly three digits
            while (i + 2 < n and toks[i + 1][0] == "," and toks[i + 1][1] == end and toks[i + 2][3] == "number"
                   and toks[i + 2][1] == toks[i + 1][2] + 1 and _DIGIT_GROUP_RE.fullmatch(toks[i + 2][0])):
                digits += toks[i + 2][0]
                end = toks[i + 2][2]
                i += 2
            out.append((text[start:end], digits.lower(), start, end))
        i += 1
    return tuple(out)


# A scan splits one text several times (its fingerprint, its index lookup, each alignment with a
# family member): the splits of the last texts seen are kept (tuples: callers get their own list).
_words_at_cached = functools.lru_cache(maxsize=CACHE_TEXTS)(_words_at)


def words_of(text: str) -> list[tuple[str, str]]:
    """(surface, canonical form) of the word and number tokens of a text (see `words_at`).

    >>> words_of("The minister said 40 Jobs would go.")[:4]
    [('The', 'the'), ('minister', 'minister'), ('said', 'said'), ('40', '40')]
    """
    return [(surface, norm) for surface, norm, _, _ in words_at(text)]


@functools.lru_cache(maxsize=CACHE_WORDS)
def _word_form(surface: str) -> str:
    return normalize_token(surface).replace(".", "")


_ZIPF_ZERO_FREQ = 1e-9  # Zipf 0: wordfreq's floor for a word it has never seen


@functools.lru_cache(maxsize=CACHE_WORDS)
def word_zipf(word: str) -> float:
    """wordfreq's `zipf_frequency(word, "en")`; a plain lowercase ASCII word is looked up in its
    table directly, rounded as wordfreq rounds (its tokenizer, most of the time of a lookup, would
    keep such a word whole; tests/test_fingerprint_zipf.py checks the two agree on every such word).

    >>> word_zipf("pontiff") < RARE_ZIPF < word_zipf("soldiers")
    True
    """
    if word.isascii() and word.isalpha() and word.islower():
        freq = max(_english_frequencies().get(word, 0.0), _ZIPF_ZERO_FREQ)
        freq = round(freq, math.floor(-math.log(freq, 10)) + 3)
        return round(math.log(freq, 10) + 9, 2)
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


@functools.lru_cache(maxsize=1)
def _english_frequencies() -> dict[str, float]:
    from wordfreq import get_frequency_dict

    return get_frequency_dict("en")


def rare_terms(words: list[tuple[str, str]]) -> set[str]:
    """The distinct rare terms of a text (numbers, names, rare content words; see RARE_ZIPF):
    what spinners keep, and what the inverted index posts.

    >>> sorted(rare_terms(words_of("Pope Francis, the first Latin American pontiff, died at 88.")))
    ['88', 'francis', 'latin', 'pontiff', 'pope']
    """
    out = set()
    for surface, norm in words:
        if norm in FUNCTION_WORDS or len(norm) < 2 and not norm.isdigit():
            continue
        if norm[:1].isdigit():  # a number (words hold no digits)
            out.add(norm)
            continue
        z = word_zipf(norm)
        if z < RARE_ZIPF or (z < NAME_ZIPF and surface[:1].isupper()):
            out.add(norm)
    return out


def term_hash(term: str) -> int:
    """The HASH_BITS-bit key of a rare term (stable across runs and machines).

    >>> term_hash("pontiff") == term_hash("pontiff"), 0 <= term_hash("pontiff") < 2 ** HASH_BITS
    (True, True)
    """
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little") >> (32 - HASH_BITS)


def immutable_seq(words: list[tuple[str, str]]) -> list[str]:
    """The tokens a spinner leaves alone: function words, numbers, capitalized words inside a sentence.

    >>> immutable_seq(words_of("The minister said 40 Jobs would go."))
    ['the', '40', 'jobs', 'would']
    """
    out = []
    for i, (surf, norm) in enumerate(words):
        if norm in FUNCTION_WORDS or surf[:1].isdigit():
            out.append(norm)
        elif surf[:1].isupper() and i > 0:
            out.append(norm)  # a capitalized word inside a sentence: a name
    return out


def shingles(seq: list[str], n: int) -> list[bytes]:
    """Word n-grams of a sequence (the whole sequence as one shingle when it is shorter).

    >>> shingles(["the", "of", "a", "in"], 3)
    [b'the of a', b'of a in']
    >>> shingles(["the", "of"], 3), shingles([], 3)
    ([b'the of'], [])
    """
    if not seq:
        return []
    if len(seq) < n:
        return [" ".join(seq).encode()]
    return [" ".join(seq[i:i + n]).encode() for i in range(len(seq) - n + 1)]


def minhash(shingle_list: list[bytes], num_perm: int = 64) -> np.ndarray | None:
    """The datasketch MinHash signature (seed=1) of a shingle set; None for no shingles.

    >>> len(minhash([b'the of a', b'of a in'], 64)), minhash([]) is None
    (64, True)
    """
    if not shingle_list:
        return None
    from datasketch import MinHash

    base = _base(num_perm)
    m = MinHash(num_perm=num_perm, seed=1, hashfunc=zlib.crc32, permutations=base.permutations, scheme=base.scheme)
    m.update_batch(set(shingle_list))
    return m.hashvalues


@functools.lru_cache(maxsize=4)
def _base(num_perm: int):
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=1, scheme="affine32")  # pinned: the index stores its bands


def band_hashes(sig: np.ndarray, kind_no: int, rows: int) -> list[tuple[int, int]]:
    """(band_no, HASH_BITS-bit hash) per band of a signature; band numbers of kind k start at k * 1000.

    >>> keys = band_hashes(minhash([b'the of a', b'of a in'], 64), 1, 2)
    >>> len(keys), keys[0][0], all(0 <= h < 2**HASH_BITS for _, h in keys)
    (32, 1000, True)
    """
    out = []
    for b in range(len(sig) // rows):
        digest = hashlib.blake2b(sig[b * rows:(b + 1) * rows].tobytes(), digest_size=4).digest()
        out.append((kind_no * 1000 + b, int.from_bytes(digest, "little") >> (32 - HASH_BITS)))
    return out


class Fingerprinter:
    """Band keys of texts, with synonym classes taken from `channel`.

    >>> fp = Fingerprinter(Channel.load_default())                   # doctest: +SKIP
    >>> fp.canonical("stated"), fp.canonical("said")                  # doctest: +SKIP
    ('announced', 'announced')
    """

    def __init__(self, channel: Channel, canon_top: int = CANON_TOP):
        self.channel = channel
        self.canon_top = canon_top
        self.top_candidates = functools.lru_cache(maxsize=CACHE_WORDS)(self._top_candidates)
        self.canonical = functools.lru_cache(maxsize=CACHE_WORDS)(self._canonical)

    def _top_candidates(self, word: str) -> tuple[str, ...]:
        out = []
        for w, sources in self.channel.iter_originals((word,)):
            if " " in w or sources == _SPELLING_ONLY:
                continue
            out.append(w)
            if len(out) >= self.canon_top:
                break
        return tuple(out)

    def _canonical(self, word: str) -> str:
        """A synonym-class representative: the smallest word within two hops of `word` through
        the channel's top single-word candidates (so a word and its spun synonym often agree)."""
        near = self.top_candidates(word)
        return min([word, *near, *(w for c in near for w in self.top_candidates(c))])

    def synonym_seq(self, words: list[tuple[str, str]]) -> list[str]:
        """Each word as its synonym class (`canonical`); function words and numbers as they are.

        >>> fp.synonym_seq(words_of("The minister said 40 jobs"))      # doctest: +SKIP
        ['the', 'clergyman', 'announced', '40', 'businesses']
        """
        return [norm if (norm in FUNCTION_WORDS or surf[:1].isdigit()) else self.canonical(norm)
                for surf, norm in words]

    def band_keys(self, text: str) -> tuple[list[tuple[int, int]], int]:
        """All keys of a text (the LSH bands of both kinds, then one per rare term) and its word count.

        >>> keys, n_words = fp.band_keys("The minister said the plan would cost more.")   # doctest: +SKIP
        >>> len(keys), n_words, keys[0][0], keys[-1][0]                                  # doctest: +SKIP
        (30, 8, 0, 1009)
        """
        return self.keys_of_words(words_of(text))

    def keys_of_words(self, words: list[tuple[str, str]]) -> tuple[list[tuple[int, int]], int]:
        """`band_keys` of a text already split by `words_of`."""
        keys: list[tuple[int, int]] = []
        for kind_no, (kind, n, perms, rows) in enumerate(KINDS):
            if kind == "term":
                keys.extend((TERM_BAND, h) for h in sorted({term_hash(t) for t in rare_terms(words)}))
                continue
            seq = immutable_seq(words) if kind == "imm" else self.synonym_seq(words)
            sig = minhash(shingles(seq, n), perms)
            if sig is not None:
                keys.extend(band_hashes(sig, kind_no, rows))
        return keys, len(words)
