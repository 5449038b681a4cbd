"""A gazetteer of known multi-word names, so that restoration respects proper names.

A spinner matches words case-insensitively, so names get spun too ("White House" ->
"White Space"). Inside a run of capitalized words the decoder may change a word only
toward a known name, never away from one: a name that the corpora know ("Radio Free ...")
is left alone, and a change that turns an unknown run into a known name is favoured.

Names are stored as 64-bit hashes of their lowercased, space-joined words (2-4 words), so
the shipped file stays small; `unspin build-names` makes it from the training corpora. Single
words that are names by themselves ("Lisbon", "Asia") are kept as proper nouns: a capitalized
proper noun is never changed.

>>> names = NameGazetteer.from_names(["silver lake council", "harbor bank"])
>>> "harbor bank" in names, "harbor tank" in names
(True, False)
>>> names.known_run(["the", "harbor", "bank", "said"], 1, 3)
True
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .lm import MODELS_DIR

DEFAULT_NAMES_PATH = MODELS_DIR / "names.npz"
MAX_NAME_WORDS = 4


def name_hash(words: str) -> int:
    """The 64-bit hash a name is stored under (`words`: lowercased, space-joined).

    >>> name_hash("harbor bank") == name_hash("harbor bank")
    True
    """
    return int.from_bytes(hashlib.blake2b(words.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


class NameGazetteer:
    """A set of known names (each 2-4 words, lowercased), looked up by hash.

    >>> NameGazetteer.from_names(["north river"]).contains_words(["north", "river"])
    True
    """

    def __init__(self, hashes: np.ndarray, proper_nouns: np.ndarray | None = None):
        self.hashes = np.unique(np.asarray(hashes, dtype=np.int64))
        # Single words that are names by themselves (written capitalized inside sentences).
        self.proper_nouns = np.unique(np.asarray([] if proper_nouns is None else proper_nouns, dtype=np.int64))

    @classmethod
    def from_names(cls, names: Iterable[str], proper_nouns: Iterable[str] = ()) -> "NameGazetteer":
        """A gazetteer of the given names and single-word proper nouns (lowercased here)."""
        return cls(np.array([name_hash(" ".join(n.lower().split())) for n in names], dtype=np.int64),
                   np.array([name_hash(w.lower()) for w in proper_nouns], dtype=np.int64))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_NAMES_PATH) -> "NameGazetteer":
        """Read a gazetteer written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(data["names"], data["proper_nouns"])

    @classmethod
    def load_default(cls) -> "NameGazetteer | None":
        """The shipped gazetteer, or None when the package has none."""
        return cls.load() if DEFAULT_NAMES_PATH.exists() else None

    def save(self, path: str | Path) -> None:
        """Write the hashes as a .npz file (no pickle)."""
        with open(path, "wb") as f:
            np.savez_compressed(f, names=self.hashes, proper_nouns=self.proper_nouns)

    def is_proper_noun(self, word: str) -> bool:
        """Whether a single (lowercased) word is a name by itself ("asia" is, "house" is not).

        >>> NameGazetteer.from_names([], ["lisbon"]).is_proper_noun("lisbon")
        True
        """
        return _member(self.proper_nouns, name_hash(word))

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, words: str) -> bool:
        return self.contains_words(words.split())

    def contains_words(self, words: Sequence[str]) -> bool:
        """Whether these (lowercased) words form a known name."""
        return _member(self.hashes, name_hash(" ".join(words)))

    def known_run(self, words: Sequence[str], first: int, last: int) -> bool:
        """Whether some known name of 2-4 words within `words` covers a word of [first, last).

        `words` is a run of (lowercased) capitalized words; the check looks at every sub-run
        that overlaps the span.

        >>> g = NameGazetteer.from_names(["radio free"])
        >>> g.known_run(["radio", "free", "zone"], 2, 3), g.known_run(["radio", "free", "zone"], 1, 2)
        (False, True)
        """
        n = len(words)
        for a in range(max(0, first - MAX_NAME_WORDS + 1), last):
            for b in range(max(a + 2, first + 1), min(n, a + MAX_NAME_WORDS) + 1):
                if b > first and self.contains_words(words[a:b]):
                    return True
        return False


def _member(sorted_hashes: np.ndarray, h: int) -> bool:
    i = int(np.searchsorted(sorted_hashes, h))
    return i < len(sorted_hashes) and int(sorted_hashes[i]) == h
