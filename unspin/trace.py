"""Find the original source of a spun copy in an `Index` of reference documents.

Candidates come from the index (LSH buckets of immutable-token and synonym-class
fingerprints, and rare-term postings); each is verified by a word-level alignment of query
and candidate in which a mismatched pair counts as a *channel substitution* when the channel
lists one as a candidate original of the other, and a clause found elsewhere in the source
counts as *moved*. The answer is page-level (`trace`: a greedy cover of the query by its
sources, each with the `Segment`s it explains); `compare` aligns two given texts, and
`source_restorations` says what each source restores of a text (`Engine.check(sources=...)`).

    unspin trace --index refs.sqlite spun.txt [--top 5] [--format text|json|html]
    unspin trace --index refs.sqlite --jsonl queries.jsonl > matches.jsonl
    unspin compare copy.txt source.txt

This module does not import `unspin.index`: `trace()` takes any index object with a
`judge` (a `SubstitutionJudge`), `candidate_documents(text, limit)` and `get(doc_id)`.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from numbers import Real
from typing import Callable, Iterable, Mapping, Protocol, Sequence

try:  # difflib's algorithm in compiled code: the same blocks, 3-4x faster (a scan aligns ~10 pairs a document)
    from cydifflib import SequenceMatcher
except ImportError:  # an install without the wheel: the standard library's, slower
    from difflib import SequenceMatcher

from .fingerprint import Fingerprinter, words_at, words_of
from .inputs import replace_surrogates
from .lexicon import MAX_LEN as MAX_KEY_WORDS, Channel
from .report import render_alignment_html, render_alignment_text
from .text import FUNCTION_WORDS

# A match needs at least this share of query words aligned (identical or channel-explained).
# Unrelated text aligns by chance on common words well below it (see bench/trace.md).
MIN_COVERAGE = 0.4
# Candidates from the index (its two paths interleaved) that get a cheap word-overlap check,
# and how many of those (best overlap first) get a full alignment (VERIFY).
PREFILTER = 24
# When none of those is accepted, up to WIDE_PREFILTER candidates get the cheap check: a heavily
# spun short copy may share a single rare term with its source, and tie with a hundred other
# documents that hold it (one 36-word copy at 60% spin in bench/trace.md at 100k documents).
WIDE_PREFILTER = 400
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
# Parts of a page. A match that explains only a part of the query (a few copied sentences with
# other text around them, or one source of a stitched page) is reported when that part holds at
# least PART_MIN_WORDS words, PART_MIN_COVERAGE of them aligned, and at least PART_MIN_CONTENT
# content words aligned (PART_MIN_CONTENT_COVERAGE of the part's content words).
PART_MIN_WORDS = 30
PART_MIN_COVERAGE = 0.6
PART_MIN_CONTENT = 10
PART_MIN_CONTENT_COVERAGE = 0.6


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
    content_coverage: float = 0.0  # share of the explained part's content words aligned
    segments: list["Segment"] = field(default_factory=list, repr=False)
    # per alignment row: (query start, query end, source start, source end) in characters, -1 when absent
    row_spans: list[tuple[int, int, int, int]] = field(default_factory=list, repr=False)
    explained_words: int = field(default=0, repr=False)  # query words inside the segments

    def to_dict(self, alignment: bool = False) -> dict:
        """The match as a JSON-ready dict (scores rounded to 4 places), its alignment rows on request.

        >>> Match("a1", 0.91254, 0.9, segments=[Segment(0, 40, "spun")]).to_dict()
        {'doc_id': 'a1', 'score': 0.9125, 'coverage': 0.9, 'reliable': True, 'segments': [{'start': 0, 'end': 40, 'kind': 'spun'}]}
        >>> Match("a1", 1.0, 1.0, [("sub_channel", "stated", "said")]).to_dict(alignment=True)["alignment"]
        [['sub_channel', 'stated', 'said']]
        """
        d = {"doc_id": self.doc_id, "score": round(self.score, 4), "coverage": round(self.coverage, 4),
             "reliable": self.reliable}
        d["segments"] = [s.to_dict() for s in self.segments]
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

    def get(self, doc_id: str) -> dict | None: ...


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
        self.word_facts = functools.lru_cache(maxsize=200_000)(self._word_facts)
        # The copies of one story share their replaced blocks: a scan aligns each pair of copies
        # once to group them and once to restore them, and each copy with several others.
        self.block_steps = functools.lru_cache(maxsize=100_000)(self._block_steps)

    def _block_steps(self, q: tuple[str, ...], s: tuple[str, ...]) -> tuple[tuple[str, int, int, int, int], ...]:
        """`_align_block` of a replaced block (cached)."""
        return tuple(_align_block(self, q, s))

    def _originals_of(self, span: tuple[str, ...]) -> frozenset[str]:
        """All candidate originals the channel lists for an observed span."""
        return frozenset(original for original, _ in self.channel.originals(span))

    def _explained(self, q: tuple[str, ...], s: tuple[str, ...]) -> bool:
        """True if the channel relates query span q and source span s (either direction)."""
        if len(q) == 1 and len(s) == 1:
            return _words_related(self.word_facts(q[0]), self.word_facts(s[0]))
        return _spans_related(" ".join(q), self.originals_of(q), " ".join(s), self.originals_of(s))

    def _word_facts(self, word: str) -> tuple[bool, bool, str, str, frozenset[str]]:
        """What `_words_related` needs of a word: (function word?, number?, its canonical form,
        the word, its channel originals)."""
        return word in FUNCTION_WORDS, word[:1].isdigit(), self.canonical(word), word, self.originals_of((word,))


def _words_related(q_facts: tuple, s_facts: tuple) -> bool:
    """Whether the channel relates two words (their `SubstitutionJudge.word_facts`)."""
    q_function, q_digit, q_canonical, q_word, q_originals = q_facts
    s_function, s_digit, s_canonical, s_word, s_originals = s_facts
    if q_function and s_function or q_digit or s_digit:
        return False  # spinners leave function words and numbers alone: no credit for those
    return q_canonical == s_canonical or s_word in q_originals or q_word in s_originals


def _spans_related(q_text: str, q_originals: frozenset[str], s_text: str, s_originals: frozenset[str]) -> bool:
    """Whether the channel lists either span (its words joined by spaces) as an original of the other."""
    return s_text in q_originals or q_text in s_originals


MAX_PHRASE = 3
MAX_BLOCK = 8


def _align_block(judge: SubstitutionJudge, q: tuple[str, ...], s: tuple[str, ...]) -> list[tuple[str, int, int, int, int]]:
    """Steps (kind, q_from, q_to, s_from, s_to) through one replaced block, most query words explained."""
    nq, ns = len(q), len(s)
    if nq == 1 and ns == 1:  # most blocks: one word for one (what the search below finds for them)
        return [("sub_channel" if judge.explained(q, s) else "sub", 0, 1, 0, 1)]
    if nq > MAX_BLOCK or ns > MAX_BLOCK:  # long blocks: pair word by word
        steps = [("sub_channel" if judge.explained(q[t:t + 1], s[t:t + 1]) else "sub", t, t + 1, t, t + 1)
                 for t in range(min(nq, ns))]
        k = min(nq, ns)
        if nq > k:
            steps.append(("ins", k, nq, k, k))
        if ns > k:
            steps.append(("del", k, k, k, ns))
        return steps
    # The channel explains a pair of spans only if it lists one of them as an observed span, so the
    # phrase pairs are tried only where one side is listed (most phrases of a block are not). What
    # the relation needs of each word and span is looked up once per block, not once per pair.
    q_listed = [[q[i:i + a] in judge.channel for a in range(1, MAX_PHRASE + 1)] for i in range(nq)]
    s_listed = [[s[j:j + b] in judge.channel for b in range(1, MAX_PHRASE + 1)] for j in range(ns)]
    q_words = [judge.word_facts(w) for w in q]
    s_words = [judge.word_facts(w) for w in s]
    q_spans = [[(" ".join(q[i:i + a]), judge.originals_of(q[i:i + a])) for a in range(1, min(MAX_PHRASE, nq - i) + 1)]
               for i in range(nq)]
    s_spans = [[(" ".join(s[j:j + b]), judge.originals_of(s[j:j + b])) for b in range(1, min(MAX_PHRASE, ns - j) + 1)]
               for j in range(ns)]
    # best[i][j] = (explained query words, -steps) for q[i:], s[j:]; ties go to the first option in
    # the order ins, del, sub, then the phrase pairs (a, b) in loop order (strict ">" below)
    best = [[(0, 0)] * (ns + 1) for _ in range(nq + 1)]
    choice: list[list[tuple | None]] = [[None] * (ns + 1) for _ in range(nq + 1)]
    for i in range(nq, -1, -1):
        best_i, best_next = best[i], best[i + 1] if i < nq else None
        for j in range(ns, -1, -1):
            if i == nq and j == ns:
                continue
            if i < nq:
                top, pick = (best_next[j][0], best_next[j][1] - 1), ("ins", 1, 0)
                if j < ns:
                    cand = (best_i[j + 1][0], best_i[j + 1][1] - 1)
                    if cand > top:
                        top, pick = cand, ("del", 0, 1)
            else:
                top, pick = (best_i[j + 1][0], best_i[j + 1][1] - 1), ("del", 0, 1)
            if i < nq and j < ns:
                cand = (best_next[j + 1][0], best_next[j + 1][1] - 1)
                if cand > top:
                    top, pick = cand, ("sub", 1, 1)
                for a in range(1, min(MAX_PHRASE, nq - i) + 1):
                    q_is_listed, (q_text, q_originals) = q_listed[i][a - 1], q_spans[i][a - 1]
                    for b in range(1, min(MAX_PHRASE, ns - j) + 1):
                        if a == b == 1:
                            related = _words_related(q_words[i], s_words[j])
                        else:
                            related = (q_is_listed or s_listed[j][b - 1]) and _spans_related(
                                q_text, q_originals, *s_spans[j][b - 1])
                        if related:
                            nxt = best[i + a][j + b]
                            cand = (nxt[0] + a, nxt[1] - 1)
                            if cand > top:
                                top, pick = cand, ("sub_channel", a, b)
            best_i[j], choice[i][j] = top, pick
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


def align(judge: SubstitutionJudge, query_words: list[tuple], source_words: list[tuple]) -> tuple[list, int, int]:
    """Alignment rows and the number of aligned query and source words. Words are `words_of`
    pairs or `words_at` tuples (surface, canonical form, ...).

    >>> rows, n_query, n_source = align(judge, words_of("The minister stated the scheme would cost more."),
    ...                                 words_of("The minister said the plan would cost more."))  # doctest: +SKIP
    >>> rows[:2], n_query, n_source                                   # doctest: +SKIP
    ([('same', 'The minister', 'The minister'), ('sub_channel', 'stated', 'said')], 8, 8)
    """
    al = _align(judge, query_words, source_words)
    return al.rows, len(al.aligned_q), al.aligned_s


# Alignment ops that count a query word as explained by the source.
ALIGNED = ("same", "sub_channel", "moved")
# Alignment rows that keep the copy's words in the source's order, one for one; rows that change them.
IN_PLACE = ("same", "sub_channel", "sub")
CHANGED_OPS = ("sub", "sub_channel", "ins", "del")


@dataclass
class _Alignment:
    rows: list[tuple[str, str, str]]
    steps: list[tuple[str, int, int, int, int]]  # per row: op and word ranges [q1, q2) and [s1, s2)
    aligned_q: list[int]                         # positions of the aligned query words
    aligned_s: int                               # number of aligned source words
    labels: list[str]                            # per query word: same | sub_channel | moved | sub | ins


def _align(judge: SubstitutionJudge, query_words: list[tuple], source_words: list[tuple]) -> _Alignment:
    qn = [w[1] for w in query_words]
    sn = [w[1] for w in source_words]
    sm = SequenceMatcher(None, qn, sn, autojunk=False)
    al = _Alignment([], [], [], 0, ["ins"] * len(qn))
    q_surfaces = [w[0] for w in query_words]
    s_surfaces = [w[0] for w in source_words]

    def add(op, i1, i2, j1, j2):
        if op == "ins":
            j1 = j2 = 0
        al.rows.append((op, " ".join(q_surfaces[i1:i2]), " ".join(s_surfaces[j1:j2])))
        al.steps.append((op, i1, i2, j1, j2) if op != "ins" else (op, i1, i2, -1, -1))
        if op != "del":
            al.labels[i1:i2] = [op] * (i2 - i1)
        if op in ALIGNED:
            al.aligned_q.extend(range(i1, i2))
            al.aligned_s += j2 - j1

    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            add("same", i1, i2, j1, j2)
        elif op == "insert":
            add("del", i1, i1, j1, j2)
        elif op == "delete":
            _add_moved(add, qn, sn, i1, i2)
        else:  # replace: a small alignment of phrases (up to 3 words a side) the channel relates
            for kind, a1, a2, b1, b2 in judge.block_steps(tuple(qn[i1:i2]), tuple(sn[j1:j2])):
                if kind == "ins":
                    _add_moved(add, qn, sn, i1 + a1, i1 + a2)
                else:
                    add(kind, i1 + a1, i1 + a2, j1 + b1, j1 + b2)
    return al


# A run of query words with no counterpart in place may be a clause the copy moved (AI rewriters
# reorder clauses): its blocks of at least MOVED_MIN_WORDS words found elsewhere in the source
# are aligned there, as "moved".
MOVED_MIN_WORDS = 3


def _add_moved(add: Callable, qn: list[str], sn: list[str], i1: int, i2: int) -> None:
    """Rows for the query words [i1, i2) that have no counterpart in place: "moved" for their
    blocks found elsewhere in the source, "ins" for the rest."""
    if i2 - i1 < MOVED_MIN_WORDS:
        add("ins", i1, i2, 0, 0)
        return
    pos = i1
    sm = SequenceMatcher(None, qn[i1:i2], sn, autojunk=False)
    for a, b, size in sm.get_matching_blocks():
        if size < MOVED_MIN_WORDS:
            continue
        if i1 + a > pos:
            add("ins", pos, i1 + a, 0, 0)
        add("moved", i1 + a, i1 + a + size, b, b + size)
        pos = i1 + a + size
    if pos < i2:
        add("ins", pos, i2, 0, 0)


# Segments: the parts of a query a source explains. A segment is a run of query words aligned to
# the source (identical or channel substitutions) with at most SEGMENT_GAP unaligned query words
# (unexplained substitutions or words only in the query) in a row; it counts when it holds at least
# SEGMENT_MIN_ALIGNED aligned words and at least SEGMENT_MIN_DENSITY of its words are aligned
# (unrelated text aligns by chance on "of the", in short, sparse runs).
SEGMENT_GAP = 4
SEGMENT_MIN_ALIGNED = 4
SEGMENT_MIN_DENSITY = 0.5
# A segment is "verbatim" when at most this share of its words differ from the source, "spun"
# when its substitutions are mostly ones the channel explains, "rewritten" otherwise.
VERBATIM_MAX_CHANGED = 0.05


@dataclass
class Segment:
    """A character range [start, end) of the query that one source explains, and how it was
    copied: verbatim | spun (channel substitutions) | rewritten (other changes).

    >>> Segment(0, 42, "spun").to_dict()
    {'start': 0, 'end': 42, 'kind': 'spun'}
    """

    start: int
    end: int
    kind: str
    n_words: int = 0    # query words in the segment
    n_aligned: int = 0  # of those, aligned to the source

    def to_dict(self) -> dict:
        """The segment as a JSON-ready dict."""
        return {"start": self.start, "end": self.end, "kind": self.kind}


def word_segments(labels: Sequence[str]) -> list[tuple[int, int]]:
    """Word ranges [i, j) of the segments of an alignment (see SEGMENT_GAP and friends), given
    each query word's label (same | sub_channel | moved | sub | ins).

    >>> word_segments(["same"] * 5 + ["ins"] * 6 + ["same", "ins", "same"])
    [(0, 5)]
    >>> word_segments(["same"] * 5 + ["sub"] * 5 + ["same"] * 4)
    [(0, 5), (10, 14)]
    >>> word_segments(["same"] * 6 + ["ins", "ins", "same", "ins", "sub"])
    [(0, 6)]
    >>> word_segments(["same", "sub", "sub_channel", "ins", "same", "same"])
    [(0, 6)]
    """
    n = len(labels)
    aligned = [x in ALIGNED for x in labels]
    # the length of the run of aligned words starting at each word
    run = [0] * (n + 1)
    for k in range(n - 1, -1, -1):
        run[k] = run[k + 1] + 1 if aligned[k] else 0
    out = []
    i = 0
    while i < n:
        if not aligned[i]:
            i += 1
            continue
        j = last = i  # grow from an aligned word while gaps stay short
        gap = 0
        while j < n:
            # after a gap, one aligned word alone ("the") does not carry the segment on
            if aligned[j] and (gap < 2 or run[j] >= 2):
                last, gap = j + run[j] - 1, 0
                j += run[j]
                continue
            gap += 1
            if gap > SEGMENT_GAP:
                break
            j += 1
        seg = aligned[i:last + 1]
        n_aligned = sum(seg)
        if n_aligned >= SEGMENT_MIN_ALIGNED and n_aligned >= SEGMENT_MIN_DENSITY * len(seg):
            out.append((i, last + 1))
        i = last + 1
    return out


def segment_kind(labels: Sequence[str]) -> str:
    """verbatim | spun | rewritten for the labels of one segment's words.

    >>> segment_kind(["same"] * 30), segment_kind(["same", "sub_channel", "same", "sub"])
    ('verbatim', 'spun')
    >>> segment_kind(["same", "sub", "ins", "sub", "sub_channel"])
    'rewritten'
    """
    changed = sum(1 for x in labels if x != "same")  # "moved" (reordered) counts as rewritten
    if changed <= VERBATIM_MAX_CHANGED * len(labels):
        return "verbatim"
    explained = sum(1 for x in labels if x == "sub_channel")
    return "spun" if explained >= changed - explained else "rewritten"


def is_content(norm: str) -> bool:
    """A content word: any word or number that is not an English function word.

    >>> is_content("minister"), is_content("40"), is_content("the")
    (True, True, False)
    """
    return norm not in FUNCTION_WORDS


def verify(judge: SubstitutionJudge, query_words, source_words, doc_id: str,
           positions: Sequence[int] | None = None, n_query: int | None = None) -> Match:
    """The alignment of a query with one candidate source, scored, with the query's segments
    that the source explains.

    `positions` (default: all) are the query words to align, in order (what is left of the query
    once other sources explained their parts); a segment never spans a gap between them.
    `coverage` is the share of all `n_query` (default: len(query_words)) query words aligned
    inside segments; `content_coverage` is the share of the aligned part's content words.
    Segments are character ranges when the words carry offsets (`words_at`), word positions
    for `words_of` pairs.

    >>> verify(judge, words_at("The minister stated the scheme would cost more."),
    ...        words_at("The minister said the plan would cost more."), "a1")   # doctest: +SKIP
    Match(doc_id='a1', score=1.0, coverage=1.0, reliable=False, content_aligned=4, content_coverage=1.0)
    """
    if positions is None:
        positions = range(len(query_words))
    positions = list(positions)
    n_query = len(query_words) if n_query is None else n_query
    part = [query_words[p] for p in positions]
    al = _align(judge, part, source_words)
    contiguous = [k == 0 or positions[k] == positions[k - 1] + 1 for k in range(len(positions))]
    segs = []
    for i, j in _split_at(word_segments(al.labels), contiguous):
        segs.append((i, j))
    in_seg = [False] * len(part)
    for i, j in segs:
        in_seg[i:j] = [True] * (j - i)
    aligned = [k for k in al.aligned_q if in_seg[k]]
    # source words aligned inside the segments (for the source-side share of the score)
    aligned_s = sum(s2 - s1 for op, q1, q2, s1, s2 in al.steps if op in ALIGNED and q1 < q2
                    and in_seg[q1])
    coverage = len(aligned) / max(n_query, 1)
    source_cov = aligned_s / max(len(source_words), 1)
    score = 0.85 * coverage + 0.15 * source_cov
    seg_words = [part[k] for k in range(len(part)) if in_seg[k]]
    n_content = sum(1 for w in seg_words if is_content(w[1]))
    content = sum(1 for k in aligned if is_content(part[k][1]))
    segments = []
    has_offsets = bool(part) and len(part[0]) >= 4
    for i, j in segs:
        seg_labels = al.labels[i:j]
        segments.append(Segment(part[i][2] if has_offsets else positions[i],
                                part[j - 1][3] if has_offsets else positions[j - 1] + 1,
                                segment_kind(seg_labels), j - i,
                                sum(1 for x in seg_labels if x in ALIGNED)))
    spans = []
    for op, q1, q2, s1, s2 in al.steps:
        qs = (part[q1][2], part[q2 - 1][3]) if has_offsets and q2 > q1 else (-1, -1)
        ss = (source_words[s1][2], source_words[s2 - 1][3]) if s2 > s1 and len(source_words[s1]) >= 4 else (-1, -1)
        spans.append((*qs, *ss))
    return Match(doc_id, min(max(score, 0.0), 1.0), coverage, al.rows, reliable=len(query_words) >= SHORT_QUERY,
                 content_aligned=content, content_coverage=content / n_content if n_content else 0.0,
                 segments=segments, row_spans=spans, explained_words=sum(j - i for i, j in segs))


def _split_at(segs: list[tuple[int, int]], contiguous: Sequence[bool]) -> list[tuple[int, int]]:
    """Segments cut where the aligned positions jump (a removed part of the query lies between)."""
    out = []
    for i, j in segs:
        start = i
        for k in range(i + 1, j):
            if not contiguous[k]:
                out.append((start, k))
                start = k
        out.append((start, j))
    return out


def accepts(m: Match, n_query_words: int, min_coverage: float = MIN_COVERAGE) -> bool:
    """Whether a verified match is reported.

    Either the whole query rule: `min_coverage` of the query's words aligned, and for a query
    under `SHORT_QUERY` words also the short-query rule (see SHORT_MIN_*); or the part rule: the
    segments the source explains hold at least PART_MIN_WORDS words (a part of a page: a few
    copied sentences with other text around them), `min_coverage` of them aligned, and the
    short-query rule on that part.

    >>> accepts(Match("a1", 0.5, 0.5), 40), accepts(Match("a1", 0.5, 0.5), 12)
    (True, False)
    >>> accepts(Match("a1", 0.7, 0.7, content_aligned=6, content_coverage=0.75), 12)
    True
    """
    if m.coverage >= min_coverage:
        if n_query_words >= SHORT_QUERY:
            return True
        if (m.coverage >= SHORT_MIN_COVERAGE and m.content_coverage >= SHORT_MIN_CONTENT_COVERAGE
                and m.content_aligned >= SHORT_MIN_CONTENT):
            return True
    n_part = m.explained_words
    if n_part < PART_MIN_WORDS:
        return False
    part_coverage = m.coverage * n_query_words / n_part
    return (part_coverage >= max(min_coverage, PART_MIN_COVERAGE) and m.content_coverage >= PART_MIN_CONTENT_COVERAGE
            and m.content_aligned >= PART_MIN_CONTENT)


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


def _verified(index: TraceableIndex, query_words, positions: list[int], verify_n: int,
              min_coverage: float, exclude: set[str], doc_cache: dict[str, list],
              prefilter: int = PREFILTER) -> list[Match]:
    """The accepted matches of the query words at `positions`, best first: candidates from the
    index, pre-ranked by shared word types (a quick lowercase split: only the best `verify_n`
    are split into canonical words and aligned). `doc_cache` keeps the candidates' texts and
    words between the rounds of one query."""
    part = [query_words[p] for p in positions]
    qset = set(_QUICK_WORD_RE.findall(" ".join(w[0] for w in part).lower()))
    pre = []
    for doc_id, doc_text, hits in index.candidate_documents(" ".join(w[0] for w in part), limit=prefilter):
        if doc_id in exclude:
            continue
        if doc_id not in doc_cache:
            doc_cache[doc_id] = [doc_text, set(_QUICK_WORD_RE.findall(doc_text.lower())), None]
        shared = len(qset & doc_cache[doc_id][1]) / max(len(qset), 1)
        pre.append((shared, hits, doc_id))
    pre.sort(key=lambda p: (-p[0], -p[1], p[2]))
    out = []
    for _shared, _hits, doc_id in pre[:verify_n]:
        entry = doc_cache[doc_id]
        if entry[2] is None:
            entry[2] = words_at(entry[0])
        m = verify(index.judge, query_words, entry[2], doc_id, positions=positions)
        if accepts(m, len(query_words), min_coverage):
            out.append(m)
    out.sort(key=lambda m: (-m.coverage, -m.score, m.doc_id))
    return out


# Words for the quick pre-ranking of candidates (letters or digits; no canonical forms).
_QUICK_WORD_RE = re.compile(r"[^\W_]+")


def trace(index: TraceableIndex, text: str, top: int = 5, min_coverage: float = MIN_COVERAGE,
          verify_n: int = VERIFY) -> list[Match]:
    """The sources of `text` in `index`, best first; [] when nothing is plausible.

    A page-level answer, by greedy cover: the source that explains most of the query comes
    first; the query words in its segments are then set aside and what is left is traced again,
    so that a page stitched from a spun excerpt of A and a verbatim paragraph of B lists A and
    B (A first when it explains more). Other sources of an already explained part (near
    duplicates in the index) follow, best score first. Each match's `segments` are the
    character ranges of `text` it explains; segments of different matches of the cover never
    overlap.

    A match needs `min_coverage` (0-1) of the query's words aligned to the source (identical,
    or a substitution the channel explains), or a part of at least PART_MIN_WORDS words that it
    explains (`accepts`). A query under `SHORT_QUERY` words gets matches marked
    `reliable=False`. `top` and `verify_n` are whole numbers >= 1 (TypeError / ValueError
    otherwise); lone surrogates in `text` are read as U+FFFD.

    >>> trace(Index("refs.sqlite"), spun_copy_of_a1, top=1)           # doctest: +SKIP
    [Match(doc_id='a1', score=1.0, coverage=1.0, reliable=True, content_aligned=32, content_coverage=1.0)]
    """
    text = check_trace_args(text, top, min_coverage, verify_n)
    query_words = words_at(text)
    if not query_words:
        return []
    remaining = list(range(len(query_words)))
    cache: dict[str, list] = {}
    cover: list[Match] = []
    others: dict[str, Match] = {}
    while remaining and len(cover) < top:
        found = _verified(index, query_words, remaining, verify_n, min_coverage, {m.doc_id for m in cover}, cache)
        if not found and not cover:  # nothing yet: a wider net (see WIDE_PREFILTER)
            found = _verified(index, query_words, remaining, verify_n, min_coverage, set(), cache, WIDE_PREFILTER)
        if not found:
            break
        best = found[0]
        cover.append(best)
        if len(cover) == 1:
            others = {m.doc_id: m for m in found[1:]}
        taken = set()
        for seg in best.segments:
            taken.update(k for k in remaining if seg.start <= query_words[k][2] < seg.end)
        remaining = [k for k in remaining if k not in taken]
        if len(remaining) < PART_MIN_WORDS:
            break
    chosen = {m.doc_id for m in cover}
    rest = sorted((m for d, m in others.items() if d not in chosen), key=lambda m: (-m.score, m.doc_id))
    return (cover + rest)[:top]


def source_replacements(match: Match, source_text: str) -> list[tuple[int, int, str]]:
    """(start, end, source wording) for each part of the query that `match` explains as a
    substitution of the source inside its segments (channel-explained, or in a spun or verbatim
    part a substitution of up to MAX_PHRASE words, or a phrase swapped in place, `_phrase_swap`):
    what restoring the query from its source changes. Character ranges index the query the match
    was traced from; the wording is cut from `source_text` (the source document's text).

    >>> m = verify(judge, words_at("The minister stated the plan would cost more today."),
    ...            words_at("The minister said the plan would cost more today."), "a1")   # doctest: +SKIP
    >>> source_replacements(m, "The minister said the plan would cost more today.")       # doctest: +SKIP
    [(13, 19, 'said')]
    """
    out = []
    rows, spans = match.alignment, match.row_spans

    def inside(q1: int, q2: int) -> "Segment | None":
        return next((g for g in match.segments if g.start <= q1 and q2 <= g.end), None)

    k = 0
    while k < len(rows):
        j = k
        while j < len(rows) and rows[j][0] in CHANGED_OPS:
            j += 1
        if j == k:
            k += 1
            continue
        swap = _phrase_swap(rows, spans, k, j)
        if swap is not None:
            q1, q2, s1, s2 = swap
            if inside(q1, q2) is not None:
                out.append((q1, q2, source_text[s1:s2]))
            k = j
            continue
        for i in range(k, j):
            (op, q, s), (q1, q2, s1, s2) = rows[i], spans[i]
            if op not in ("sub_channel", "sub") or q1 < 0 or s1 < 0:
                continue
            seg = inside(q1, q2)
            # an unexplained substitution is the source's wording only where the copy follows the
            # source word for word (a spun or verbatim part, or as many words in place of as many with
            # nothing inserted, dropped or moved beside them); in a rewritten part it may pair unrelated words
            if seg is None or op == "sub" and (len(q.split()) > MAX_PHRASE or len(s.split()) > MAX_PHRASE
                                               or seg.kind == "rewritten" and not _in_place(rows, i)):
                continue
            out.append((q1, q2, source_text[s1:s2]))
        k = j
    return out


def _phrase_swap(rows: Sequence[tuple[str, str, str]], spans: Sequence[tuple[int, int, int, int]],
                 first: int, last: int) -> tuple[int, int, int, int] | None:
    """The character spans (query start, end, source start, end) of alignment rows [first, last)
    taken as one swap, or None: rows that put in or leave out words beside a substitution, short
    (a channel key a side) and between unchanged words, are one phrase in place of another
    ("pillar of society" for "something" aligns as the words "pillar of" put in, then "society" for
    "something"). Blocks of substitutions alone stay word by word.

    >>> rows = [("same", "It was", "It was"), ("ins", "pillar of", ""), ("sub", "society", "something"),
    ...         ("same", "else", "else")]
    >>> _phrase_swap(rows, [(0, 6, 0, 6), (7, 16, -1, -1), (17, 24, 7, 16), (25, 29, 17, 21)], 1, 3)
    (7, 24, 7, 16)
    """
    block = rows[first:last]
    if not any(op in ("ins", "del") for op, _, _ in block):
        return None
    n_query = sum(len(q.split()) for _, q, _ in block)
    n_source = sum(len(s.split()) for _, _, s in block)
    if not (0 < n_query <= MAX_KEY_WORDS and 0 < n_source <= MAX_KEY_WORDS):
        return None
    if any(rows[i][0] != "same" for i in (first - 1, last) if 0 <= i < len(rows)):
        return None
    part = spans[first:last]
    q = [(a, b) for a, b, _, _ in part if a >= 0]
    s = [(c, d) for _, _, c, d in part if c >= 0]
    return min(a for a, _ in q), max(b for _, b in q), min(c for c, _ in s), max(d for _, d in s)


def _in_place(rows: Sequence[tuple[str, str, str]], k: int) -> bool:
    """Whether alignment row k replaces as many words as it has, between rows that keep their place.

    >>> _in_place([("same", "the", "the"), ("sub", "cockpits", "forums"), ("same", "were", "were")], 1)
    True
    >>> _in_place([("ins", "new", ""), ("sub", "cockpits", "forums"), ("same", "were", "were")], 1)
    False
    """
    op, q, s = rows[k]
    if len(q.split()) != len(s.split()):
        return False
    return all(rows[j][0] in IN_PLACE for j in (k - 1, k + 1) if 0 <= j < len(rows))


def compare(query: str, source: str, channel: Channel | None = None, source_id: str = "source",
            judge: SubstitutionJudge | None = None) -> Match:
    """The alignment of two given texts, no index: `query` (a suspected copy) against `source`,
    with its segments (character ranges of `query`), coverage and score (whether or not
    `accepts` would report it). `judge`: the substitution judge to align with (default: one
    over `channel`, itself the shipped channel by default); a server passes its own.

    >>> m = compare("The minister stated the scheme would cost more.",
    ...             "The minister said the plan would cost more.")           # doctest: +SKIP
    >>> m.coverage, [s.kind for s in m.segments]                        # doctest: +SKIP
    (1.0, ['spun'])
    """
    for name, value in (("query", query), ("source", source)):
        if not isinstance(value, str):
            raise TypeError(f"compare() expects the {name} text as a str, got {type(value).__name__}")
    if judge is None:
        channel = channel if channel is not None else Channel.load_default()
        judge = SubstitutionJudge(channel, Fingerprinter(channel).canonical)
    return verify(judge, words_at(replace_surrogates(query)), words_at(replace_surrogates(source)), source_id)


def source_text(index: TraceableIndex, doc_id: str) -> str:
    """The stored text of an indexed document ("" when it is gone).

    >>> source_text(Index("refs.sqlite"), "a1")[:12]                   # doctest: +SKIP
    'The minister'
    """
    return (index.get(doc_id) or {}).get("text", "")


def restorations_from_sources(text: str, matches: Sequence[Match],
                              source_texts: Mapping[str, str]) -> dict[str, tuple[str, list[tuple[int, int, str, str]]]]:
    """`restore_from_source` of `text` for each match, by doc_id (`source_texts`: each source's
    text by doc_id), as `report.render_alignment_html` takes them.

    >>> restorations_from_sources(copy, [m], {m.doc_id: source})[m.doc_id][0]   # doctest: +SKIP
    'The minister said the plan would cost more.'
    """
    return {m.doc_id: restore_from_source(text, m, source_texts[m.doc_id]) for m in matches}


def restore_from_source(text: str, match: Match, source_text: str) -> tuple[str, list[tuple[int, int, str, str]]]:
    """`text` (the query `match` was traced from) with the parts the source explains as
    substitutions put back in the source's wording (`source_replacements`), and the changes as
    (start, end in the restored text, the copy's wording, the source's wording).

    >>> restore_from_source(copy, m, source)                           # doctest: +SKIP
    ('The minister said the plan would cost more today.', [(13, 17, 'stated', 'said')])
    """
    out, changes, pos, shift = [], [], 0, 0
    for start, end, wording in source_replacements(match, source_text):
        if start < pos:
            continue
        out.append(text[pos:start])
        new_start = start + shift
        changes.append((new_start, new_start + len(wording), text[start:end], wording))
        out.append(wording)
        shift += len(wording) - (end - start)
        pos = end
    out.append(text[pos:])
    return "".join(out), changes


@dataclass
class SourceRestoration:
    """What one source explains of a text: the character ranges it covers (`segments`) and, in
    them, each substituted part with the source's wording (`replacements`: start, end, wording).
    `Engine.check(text, sources=...)` puts these in place of the decoder's guesses there.

    >>> r = SourceRestoration("a1", [(0, 48)], [(13, 19, "said")])
    >>> r.replacements[0]
    (13, 19, 'said')
    """

    doc_id: str
    segments: list[tuple[int, int]]
    replacements: list[tuple[int, int, str]]


def source_restorations(index: TraceableIndex, text: str, top: int = 5,
                        min_coverage: float = MIN_COVERAGE) -> list[SourceRestoration]:
    """Trace `text` in `index` and, for each source of the page-level answer (`trace`: segments
    never overlap), what it restores of `text`. Needs `index.get(doc_id)` (the source's text).

    >>> [r.replacements for r in source_restorations(Index("refs.sqlite"), copy)]   # doctest: +SKIP
    [[(13, 19, 'said')]]
    """
    out: list[SourceRestoration] = []
    taken: list[tuple[int, int]] = []
    for m in trace(index, text, top=top, min_coverage=min_coverage):
        segs = [(g.start, g.end) for g in m.segments
                if not any(g.start < b and a < g.end for a, b in taken)]  # the cover's parts only
        if not segs:
            continue
        reps = [(a, b, w) for a, b, w in source_replacements(m, source_text(index, m.doc_id))
                if any(s <= a and b <= e for s, e in segs)]
        taken += segs
        out.append(SourceRestoration(m.doc_id, segs, reps))
    return out
