"""Find the original source of a spun copy in an `Index` of reference documents.

Candidates come from the index's LSH buckets (immutable-token and synonym-class
fingerprints); each is verified by a word-level alignment of query and candidate in
which a mismatched pair counts as a *channel substitution* when the channel lists one
as a candidate original of the other.

    unspin trace --index refs.sqlite spun.txt [--top 5] [--format text|json|html]
    unspin trace --index refs.sqlite --jsonl queries.jsonl > matches.jsonl

This module does not import `unspin.index`: `trace()` takes any index object with a
`judge` (a `SubstitutionJudge`) and `candidate_documents(text, limit)`.
"""
from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Callable, Iterable, Protocol, Sequence

from .fingerprint import words_of
from .inputs import replace_surrogates
from .lexicon import Channel
from .report import render_alignment_html, render_alignment_text
from .text import FUNCTION_WORDS

# A match needs at least this share of query words aligned (identical or channel-explained).
# Unrelated text aligns by chance on common words well below it (see bench/trace.md).
MIN_COVERAGE = 0.4
# Candidates from the LSH buckets (most bucket hits first) that get a cheap word-overlap
# check, and how many of those (best overlap first) get a full alignment.
PREFILTER = 40
VERIFY = 5

# Short queries. Under SHORT_QUERY words a query shares its function words ("of the", "in
# the") with many unrelated paragraphs by chance: at the plain rule (MIN_COVERAGE alone) 41 of
# 300 unrelated 8-word queries, 35 of 300 15-word and 5 of 300 25-word ones found a "source" in
# an index of 5,000 paragraphs, against 1 of 300 at 40 words (`python -m
# unspin.build.bench_reliability`, bench/reliability.md). Such a query's matches are marked
# `reliable: false` and must also pass a stricter rule: SHORT_MIN_COVERAGE of all its words and
# SHORT_MIN_CONTENT_COVERAGE of its content words (not function words) aligned, at least
# SHORT_MIN_CONTENT of them. Spun short copies (25% of the words) kept >= 0.64 of their content
# words aligned, unrelated queries at most 0.5 and at most 4 content words: with the rule 1 of
# 300 unrelated 15-word queries matched, and no spun copy was lost.
SHORT_QUERY = 40
SHORT_MIN_COVERAGE = 0.6
SHORT_MIN_CONTENT_COVERAGE = 0.6
SHORT_MIN_CONTENT = 5


@dataclass
class Match:
    """A likely source of a query. `reliable` is False for a query under `SHORT_QUERY` words
    (such a match also passed the stricter short-query rule, but short text is weak evidence).
    `content_aligned` counts the query's content words (not function words) that are aligned.

    >>> m = Match("a1", 0.9125, 0.9, [("same", "The minister", "The minister"), ("sub_channel", "stated", "said")])
    >>> m
    Match(doc_id='a1', score=0.9125, coverage=0.9, reliable=True, content_aligned=0, content_coverage=0.0)
    """

    doc_id: str
    score: float        # in [0, 1]: mostly coverage, a little source-side coverage
    coverage: float     # share of query words aligned (identical or channel substitution)
    alignment: list[tuple[str, str, str]] = field(default_factory=list, repr=False)
    # rows (op, query_text, source_text), op in same | sub | sub_channel | ins | del
    reliable: bool = True
    content_aligned: int = 0
    content_coverage: float = 0.0  # share of the query's content words aligned

    def to_dict(self, alignment: bool = False) -> dict:
        """The match as a JSON-ready dict (scores rounded to 4 places), its alignment rows on request.

        >>> Match("a1", 0.91254, 0.9).to_dict()
        {'doc_id': 'a1', 'score': 0.9125, 'coverage': 0.9, 'reliable': True}
        >>> Match("a1", 1.0, 1.0, [("sub_channel", "stated", "said")]).to_dict(alignment=True)["alignment"]
        [['sub_channel', 'stated', 'said']]
        """
        d = {"doc_id": self.doc_id, "score": round(self.score, 4), "coverage": round(self.coverage, 4),
             "reliable": self.reliable}
        if alignment:
            d["alignment"] = [list(r) for r in self.alignment]
        return d

    def to_text(self, width: int = 100, changes_only: bool = False) -> str:
        """A side-by-side text view of the alignment (`unspin.report.render_alignment_text`).

        >>> Match("a1", 0.9125, 0.9, [("sub_channel", "stated", "said")]).to_text().splitlines()[0]
        'source a1  score 0.912  coverage 0.900'
        """
        return render_alignment_text(self, width=width, changes_only=changes_only)

    def to_html(self, title: str = "unspin trace") -> str:
        """A self-contained HTML page of the alignment (`unspin.report.render_alignment_html`).

        >>> Match("a1", 0.9125, 0.9, [("sub_channel", "stated", "said")]).to_html().startswith("<!doctype html>")
        True
        """
        return render_alignment_html(self, title=title)


class TraceableIndex(Protocol):
    """What `trace` needs from an index (`unspin.index.Index` is one).

    >>> class Refs:                                                   # doctest: +SKIP
    ...     judge = SubstitutionJudge(channel, fingerprinter.canonical)
    ...     def candidate_documents(self, text, limit=30):
    ...         return [("a1", "The minister said the plan would cost more.", 12)]
    >>> trace(Refs(), "The minister stated the scheme would cost more.")    # doctest: +SKIP
    [Match(doc_id='a1', score=1.0, coverage=1.0, reliable=False, content_aligned=4, content_coverage=1.0)]
    """

    judge: "SubstitutionJudge"

    def candidate_documents(self, text: str, limit: int = 30) -> Iterable[tuple[str, str, int]]: ...


class SubstitutionJudge:
    """Whether the channel explains a query span as a spun form of a source span (cached).

    >>> judge = SubstitutionJudge(channel, Fingerprinter(channel).canonical)    # doctest: +SKIP
    >>> judge.explained(("stated",), ("said",)), judge.explained(("the",), ("a",))  # doctest: +SKIP
    (True, False)
    """

    def __init__(self, channel: Channel, canonical: Callable[[str], str]):
        self.channel = channel
        self.canonical = canonical
        self.originals_of = functools.lru_cache(maxsize=500_000)(self._originals_of)
        self.explained = functools.lru_cache(maxsize=100_000)(self._explained)

    def _originals_of(self, span: tuple[str, ...]) -> frozenset[str]:
        """All candidate originals the channel lists for an observed span."""
        return frozenset(original for original, _ in self.channel.originals(span))

    def _explained(self, q: tuple[str, ...], s: tuple[str, ...]) -> bool:
        """True if the channel relates query span q and source span s (either direction)."""
        if len(q) == 1 and len(s) == 1 and (q[0] in FUNCTION_WORDS and s[0] in FUNCTION_WORDS
                                            or q[0][:1].isdigit() or s[0][:1].isdigit()):
            return False  # spinners leave function words and numbers alone: no credit for those
        if len(q) == 1 and len(s) == 1 and self.canonical(q[0]) == self.canonical(s[0]):
            return True
        return " ".join(s) in self.originals_of(q) or " ".join(q) in self.originals_of(s)


MAX_PHRASE = 3
MAX_BLOCK = 8


def _align_block(judge: SubstitutionJudge, q: tuple[str, ...], s: tuple[str, ...]) -> list[tuple[str, int, int, int, int]]:
    """Steps (kind, q_from, q_to, s_from, s_to) through one replaced block, most query words explained."""
    nq, ns = len(q), len(s)
    if nq > MAX_BLOCK or ns > MAX_BLOCK:  # long blocks: pair word by word
        steps = [("sub_channel" if judge.explained(q[t:t + 1], s[t:t + 1]) else "sub", t, t + 1, t, t + 1)
                 for t in range(min(nq, ns))]
        k = min(nq, ns)
        if nq > k:
            steps.append(("ins", k, nq, k, k))
        if ns > k:
            steps.append(("del", k, k, k, ns))
        return steps
    # best[i][j] = (explained query words, -steps) for q[i:], s[j:]
    best = [[(0, 0)] * (ns + 1) for _ in range(nq + 1)]
    choice: list[list[tuple | None]] = [[None] * (ns + 1) for _ in range(nq + 1)]
    for i in range(nq, -1, -1):
        for j in range(ns, -1, -1):
            if i == nq and j == ns:
                continue
            opts = []
            if i < nq:
                opts.append(((best[i + 1][j][0], best[i + 1][j][1] - 1), ("ins", 1, 0)))
            if j < ns:
                opts.append(((best[i][j + 1][0], best[i][j + 1][1] - 1), ("del", 0, 1)))
            if i < nq and j < ns:
                opts.append(((best[i + 1][j + 1][0], best[i + 1][j + 1][1] - 1), ("sub", 1, 1)))
                for a in range(1, min(MAX_PHRASE, nq - i) + 1):
                    for b in range(1, min(MAX_PHRASE, ns - j) + 1):
                        if judge.explained(q[i:i + a], s[j:j + b]):
                            nxt = best[i + a][j + b]
                            opts.append(((nxt[0] + a, nxt[1] - 1), ("sub_channel", a, b)))
            best[i][j], choice[i][j] = max(opts, key=lambda o: o[0])
    steps = []
    i = j = 0
    while i < nq or j < ns:
        kind, a, b = choice[i][j]
        if steps and kind in ("ins", "del") and steps[-1][0] == kind:  # merge runs
            k0, a1, _, b1, _ = steps[-1]
            steps[-1] = (kind, a1, i + a, b1, j + b)
        else:
            steps.append((kind, i, i + a, j, j + b))
        i, j = i + a, j + b
    return steps


def align(judge: SubstitutionJudge, query_words: list[tuple[str, str]],
          source_words: list[tuple[str, str]]) -> tuple[list, int, int]:
    """Alignment rows and the number of aligned query and source words.

    >>> rows, n_query, n_source = align(judge, words_of("The minister stated the scheme would cost more."),
    ...                                 words_of("The minister said the plan would cost more."))  # doctest: +SKIP
    >>> rows[:2], n_query, n_source                                   # doctest: +SKIP
    ([('same', 'The minister', 'The minister'), ('sub_channel', 'stated', 'said')], 8, 8)
    """
    rows, aligned, aligned_s = _align(judge, query_words, source_words)
    return rows, len(aligned), aligned_s


def _align(judge: SubstitutionJudge, query_words: list[tuple[str, str]],
           source_words: list[tuple[str, str]]) -> tuple[list, list[int], int]:
    """Alignment rows, the positions of the aligned query words and the number of aligned source words."""
    qn = [n for _, n in query_words]
    sn = [n for _, n in source_words]
    sm = difflib.SequenceMatcher(None, qn, sn, autojunk=False)
    rows: list[tuple[str, str, str]] = []
    aligned_q: list[int] = []
    aligned_s = 0

    def text(words, i, j):
        return " ".join(w for w, _ in words[i:j])

    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            rows.append(("same", text(query_words, i1, i2), text(source_words, j1, j2)))
            aligned_q.extend(range(i1, i2))
            aligned_s += j2 - j1
        elif op == "insert":
            rows.append(("del", "", text(source_words, j1, j2)))
        elif op == "delete":
            rows.append(("ins", text(query_words, i1, i2), ""))
        else:  # replace: a small alignment of phrases (up to 3 words a side) the channel relates
            for kind, a1, a2, b1, b2 in _align_block(judge, tuple(qn[i1:i2]), tuple(sn[j1:j2])):
                if kind == "ins":
                    rows.append(("ins", text(query_words, i1 + a1, i1 + a2), ""))
                elif kind == "del":
                    rows.append(("del", "", text(source_words, j1 + b1, j1 + b2)))
                else:
                    rows.append((kind, text(query_words, i1 + a1, i1 + a2), text(source_words, j1 + b1, j1 + b2)))
                    if kind == "sub_channel":
                        aligned_q.extend(range(i1 + a1, i1 + a2))
                        aligned_s += b2 - b1
    return rows, aligned_q, aligned_s


def is_content(norm: str) -> bool:
    """A content word: any word or number that is not an English function word.

    >>> is_content("minister"), is_content("40"), is_content("the")
    (True, True, False)
    """
    return norm not in FUNCTION_WORDS


def verify(judge: SubstitutionJudge, query_words, source_words, doc_id: str) -> Match:
    """The alignment of a query with one candidate source, scored.

    >>> verify(judge, words_of("The minister stated the scheme would cost more."),
    ...        words_of("The minister said the plan would cost more."), "a1")   # doctest: +SKIP
    Match(doc_id='a1', score=1.0, coverage=1.0, reliable=False, content_aligned=4, content_coverage=1.0)
    """
    rows, aligned, as_ = _align(judge, query_words, source_words)
    coverage = len(aligned) / max(len(query_words), 1)
    source_cov = as_ / max(len(source_words), 1)
    score = 0.85 * coverage + 0.15 * source_cov
    n_content = sum(1 for _, n in query_words if is_content(n))
    content = sum(1 for i in aligned if is_content(query_words[i][1]))
    return Match(doc_id, min(max(score, 0.0), 1.0), coverage, rows, reliable=len(query_words) >= SHORT_QUERY,
                 content_aligned=content, content_coverage=content / n_content if n_content else 0.0)


def accepts(m: Match, n_query_words: int, min_coverage: float = MIN_COVERAGE) -> bool:
    """Whether a verified match is reported: `min_coverage` of the query's words aligned; for a
    query under `SHORT_QUERY` words also the short-query rule (see SHORT_MIN_*).

    >>> accepts(Match("a1", 0.5, 0.5), 40), accepts(Match("a1", 0.5, 0.5), 12)
    (True, False)
    >>> accepts(Match("a1", 0.7, 0.7, content_aligned=6, content_coverage=0.75), 12)
    True
    """
    if m.coverage < min_coverage:
        return False
    if n_query_words >= SHORT_QUERY:
        return True
    return (m.coverage >= SHORT_MIN_COVERAGE and m.content_coverage >= SHORT_MIN_CONTENT_COVERAGE
            and m.content_aligned >= SHORT_MIN_CONTENT)


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number (int), got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_trace_args(text, top: int, min_coverage: float, verify_n: int = VERIFY) -> str:
    """Type- and range-check the arguments of `trace`; returns the text, lone surrogates replaced.

    >>> check_trace_args("The plan.", 5, 0.4)
    'The plan.'
    >>> check_trace_args("The plan.", 0, 0.4)
    Traceback (most recent call last):
    ...
    ValueError: top must be at least 1, got 0
    """
    if not isinstance(text, str):
        raise TypeError(f"trace() expects the query text as a str, got {type(text).__name__}")
    _check_int("top", top)
    _check_int("verify_n", verify_n)
    if isinstance(min_coverage, bool) or not isinstance(min_coverage, Real):
        raise TypeError(f"min_coverage must be a number between 0 and 1, got {type(min_coverage).__name__}")
    if not (0.0 <= min_coverage <= 1.0) or math.isnan(min_coverage):
        raise ValueError(f"min_coverage must be between 0 and 1, got {min_coverage}")
    return replace_surrogates(text)


def trace(index: TraceableIndex, text: str, top: int = 5, min_coverage: float = MIN_COVERAGE,
          verify_n: int = VERIFY) -> list[Match]:
    """The most likely sources of `text` in `index`, best first; [] when nothing is plausible.

    A match needs `min_coverage` (0-1) of the query's words aligned to the source (identical,
    or a substitution the channel explains). A query under `SHORT_QUERY` words gets matches
    marked `reliable=False`, and only those that also pass the stricter short-query rule
    (`accepts`). `top` and `verify_n` are whole numbers >= 1 (TypeError / ValueError otherwise);
    lone surrogates in `text` are read as U+FFFD.

    >>> trace(Index("refs.sqlite"), spun_copy_of_a1, top=1)           # doctest: +SKIP
    [Match(doc_id='a1', score=1.0, coverage=1.0, reliable=True, content_aligned=32, content_coverage=1.0)]
    """
    text = check_trace_args(text, top, min_coverage, verify_n)
    query_words = words_of(text)
    if not query_words:
        return []
    judge = index.judge
    # Cheap pre-ranking of the LSH candidates by shared word types; the best few get aligned.
    qset = {n for _, n in query_words}
    pre = []
    for doc_id, doc_text, hits in index.candidate_documents(text, limit=PREFILTER):
        doc_words = words_of(doc_text)
        shared = len(qset & {n for _, n in doc_words}) / len(qset)
        pre.append((shared, hits, doc_id, doc_words))
    pre.sort(key=lambda p: (-p[0], -p[1], p[2]))
    matches = []
    for _shared, _hits, doc_id, doc_words in pre[:verify_n]:
        m = verify(judge, query_words, doc_words, doc_id)
        if accepts(m, len(query_words), min_coverage):
            matches.append(m)
    matches.sort(key=lambda m: (-m.score, m.doc_id))
    return matches[:top]
