"""Fingerprints of a text that survive synonym spinning: MinHash band keys over what spinners keep.

Two kinds of shingles:

* "imm": word 3-grams over the text's *immutable* tokens only (function words, numbers,
  capitalized names), which a spinner leaves alone;
* "syn": word 3-grams over *synonym-class* tokens: each word mapped through the channel
  to the smallest of itself and its top candidates, so `said` and `stated` often agree.

Fingerprinting is pure (no storage): `Index` stores the band keys, and a corpus scan can
compare them without a database.

>>> fp = Fingerprinter(Channel.load_default())       # doctest: +SKIP
>>> keys, n_words = fp.band_keys("The minister said the plan would cost more.")   # doctest: +SKIP
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

from .lexicon import Channel
from .text import FUNCTION_WORDS, tokenize

# (kind, shingle size, permutations, rows per band). Immutable-token 3-grams keep a
# Jaccard of ~0.5 under 40-60% spinning (~0.2 at worst: spinners touch names and
# particles too) and ~0 between unrelated texts: 63 bands of 2 rows. Synonym-class
# 3-grams keep less (~0.2): 32 bands of 2 rows.
KINDS = (("imm", 3, 126, 2), ("syn", 3, 64, 2))
NUM_PERM = sum(k[2] for k in KINDS)
# How many of a word's single-word channel candidates form its synonym class.
CANON_TOP = 4
# Bound on the per-fingerprinter word caches (a long scan sees millions of word types).
CACHE_WORDS = 200_000

_SPELLING_ONLY = frozenset({"spelling"})


def words_of(text: str) -> list[tuple[str, str]]:
    """(surface, norm) of the word and number tokens of a text.

    >>> words_of("The minister said 40 Jobs would go.")[:4]
    [('The', 'the'), ('minister', 'minister'), ('said', 'said'), ('40', '40')]
    """
    return [(t.text, t.norm) for t in tokenize(text) if t.kind in ("word", "number")]


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
    m = MinHash(num_perm=num_perm, seed=1, permutations=base.permutations, scheme=base.scheme)
    m.update_batch(set(shingle_list))
    return m.hashvalues


@functools.lru_cache(maxsize=4)
def _base(num_perm: int):
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=1, scheme="affine32")  # pinned: the index stores its bands


def band_hashes(sig: np.ndarray, kind_no: int, rows: int) -> list[tuple[int, int]]:
    """(band_no, 63-bit hash) per band of a signature; band numbers of kind k start at k * 1000.

    >>> keys = band_hashes(minhash([b'the of a', b'of a in'], 64), 1, 2)
    >>> len(keys), keys[0][0], all(0 <= h < 2**63 for _, h in keys)
    (32, 1000, True)
    """
    out = []
    for b in range(len(sig) // rows):
        digest = hashlib.blake2b(sig[b * rows:(b + 1) * rows].tobytes(), digest_size=8).digest()
        out.append((kind_no * 1000 + b, int.from_bytes(digest, "little") >> 1))
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
        for w, sources in self.channel.originals((word,)):
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
        """All band keys of a text (both kinds) and its word count.

        >>> keys, n_words = fp.band_keys("The minister said the plan would cost more.")   # doctest: +SKIP
        >>> len(keys), n_words, keys[0][0], keys[-1][0]                                  # doctest: +SKIP
        (95, 8, 0, 1031)
        """
        words = words_of(text)
        keys: list[tuple[int, int]] = []
        for kind_no, (kind, n, perms, rows) in enumerate(KINDS):
            seq = immutable_seq(words) if kind == "imm" else self.synonym_seq(words)
            sig = minhash(shingles(seq, n), perms)
            if sig is not None:
                keys.extend(band_hashes(sig, kind_no, rows))
        return keys, len(words)
