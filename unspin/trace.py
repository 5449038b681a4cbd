"""Find the original source of a spun copy in an `Index` of reference documents.

Candidates come from the index's LSH buckets (immutable-token and synonym-class
fingerprints); each is verified by a word-level alignment of query and candidate in
which a mismatched pair counts as a *channel substitution* when the channel lists one
as a candidate original of the other.

    python -m unspin.trace --index refs.sqlite spun.txt [--top 5] [--format text|json|html]
    python -m unspin.trace --index refs.sqlite --jsonl queries.jsonl > matches.jsonl
"""
from __future__ import annotations

import argparse
import difflib
import functools
import html
import json
import sys
from dataclasses import dataclass, field
from typing import Sequence

from .inputs import MAX_DOCUMENT_BYTES, InputError, map_jsonl, read_document, run_command
from .text import FUNCTION_WORDS

# A match needs at least this share of query words aligned (identical or channel-explained).
# Unrelated text aligns by chance on common words well below it (see bench/trace.md).
MIN_COVERAGE = 0.4
# Candidates from the LSH buckets (most bucket hits first) that get a cheap word-overlap
# check, and how many of those (best overlap first) get a full alignment.
PREFILTER = 40
VERIFY = 5


@dataclass
class Match:
    doc_id: str
    score: float        # in [0, 1]: mostly coverage, a little source-side coverage
    coverage: float     # share of query words aligned (identical or channel substitution)
    alignment: list[tuple[str, str, str]] = field(default_factory=list, repr=False)
    # rows (op, query_text, source_text), op in same | sub | sub_channel | ins | del

    def to_dict(self, alignment: bool = False) -> dict:
        d = {"doc_id": self.doc_id, "score": round(self.score, 4), "coverage": round(self.coverage, 4)}
        if alignment:
            d["alignment"] = [list(r) for r in self.alignment]
        return d


def _explained(q: Sequence[str], s: Sequence[str]) -> bool:
    """True if the channel relates query span q and source span s (either direction)."""
    from .index import canonical

    if len(q) == 1 and len(s) == 1 and (q[0] in FUNCTION_WORDS and s[0] in FUNCTION_WORDS
                                        or q[0][:1].isdigit() or s[0][:1].isdigit()):
        return False  # spinners leave function words and numbers alone: no credit for those
    if len(q) == 1 and len(s) == 1 and canonical(q[0]) == canonical(s[0]):
        return True
    return " ".join(s) in _originals_of(tuple(q)) or " ".join(q) in _originals_of(tuple(s))


@functools.lru_cache(maxsize=500_000)
def _originals_of(span: tuple[str, ...]) -> frozenset[str]:
    """All candidate originals the channel lists for an observed span."""
    from .index import _channel

    return frozenset(original for original, _ in _channel().originals(span))


@functools.lru_cache(maxsize=100_000)
def _explained_cached(q: tuple[str, ...], s: tuple[str, ...]) -> bool:
    return _explained(q, s)


MAX_PHRASE = 3
MAX_BLOCK = 8


def _align_block(q: tuple[str, ...], s: tuple[str, ...]) -> list[tuple[str, int, int, int, int]]:
    """Steps (kind, q_from, q_to, s_from, s_to) through one replaced block, most query words explained."""
    nq, ns = len(q), len(s)
    if nq > MAX_BLOCK or ns > MAX_BLOCK:  # long blocks: pair word by word
        steps = [("sub_channel" if _explained_cached(q[t:t + 1], s[t:t + 1]) else "sub", t, t + 1, t, t + 1)
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
                        if _explained_cached(q[i:i + a], s[j:j + b]):
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


def align(query_words: list[tuple[str, str]], source_words: list[tuple[str, str]]) -> tuple[list, int, int]:
    """Alignment rows and the number of aligned query and source words."""
    qn = [n for _, n in query_words]
    sn = [n for _, n in source_words]
    sm = difflib.SequenceMatcher(None, qn, sn, autojunk=False)
    rows: list[tuple[str, str, str]] = []
    aligned_q = aligned_s = 0

    def text(words, i, j):
        return " ".join(w for w, _ in words[i:j])

    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            rows.append(("same", text(query_words, i1, i2), text(source_words, j1, j2)))
            aligned_q += i2 - i1
            aligned_s += j2 - j1
        elif op == "insert":
            rows.append(("del", "", text(source_words, j1, j2)))
        elif op == "delete":
            rows.append(("ins", text(query_words, i1, i2), ""))
        else:  # replace: a small alignment of phrases (up to 3 words a side) the channel relates
            for kind, a1, a2, b1, b2 in _align_block(tuple(qn[i1:i2]), tuple(sn[j1:j2])):
                if kind == "ins":
                    rows.append(("ins", text(query_words, i1 + a1, i1 + a2), ""))
                elif kind == "del":
                    rows.append(("del", "", text(source_words, j1 + b1, j1 + b2)))
                else:
                    rows.append((kind, text(query_words, i1 + a1, i1 + a2), text(source_words, j1 + b1, j1 + b2)))
                    if kind == "sub_channel":
                        aligned_q += a2 - a1
                        aligned_s += b2 - b1
    return rows, aligned_q, aligned_s


def verify(query_words, source_words, doc_id: str) -> Match:
    rows, aq, as_ = align(query_words, source_words)
    coverage = aq / max(len(query_words), 1)
    source_cov = as_ / max(len(source_words), 1)
    score = 0.85 * coverage + 0.15 * source_cov
    return Match(doc_id, min(max(score, 0.0), 1.0), coverage, rows)


def trace(index, text: str, top: int = 5, min_coverage: float = MIN_COVERAGE, verify_n: int = VERIFY) -> list[Match]:
    """The most likely sources of `text` in `index`, best first; [] when nothing is plausible."""
    from .index import words_of

    query_words = words_of(text)
    if not query_words:
        return []
    # Cheap pre-ranking of the LSH candidates by shared word types; the best few get aligned.
    qset = {n for _, n in query_words}
    pre = []
    for rowid, hits in index.candidates(text, limit=PREFILTER):
        got = index._get_by_rowid(rowid)
        if got is None:
            continue
        doc_words = words_of(got[1])
        shared = len(qset & {n for _, n in doc_words}) / len(qset)
        pre.append((shared, hits, got[0], doc_words))
    pre.sort(key=lambda p: (-p[0], -p[1], p[2]))
    matches = []
    for _shared, _hits, doc_id, doc_words in pre[:verify_n]:
        m = verify(query_words, doc_words, doc_id)
        if m.coverage >= min_coverage:
            matches.append(m)
    matches.sort(key=lambda m: (-m.score, m.doc_id))
    return matches[:top]


# ---- display ----------------------------------------------------------------------------
def render_alignment_text(match: Match, width: int = 100, changes_only: bool = False) -> str:
    """A side-by-side view: query | source, with a marker per row."""
    col = max((width - 5) // 2, 10)
    marks = {"same": " ", "sub": "!", "sub_channel": "~", "ins": "+", "del": "-"}
    lines = [f"source {match.doc_id}  score {match.score:.3f}  coverage {match.coverage:.3f}",
             f"  {'query':<{col}} | source", "  " + "-" * (2 * col + 3)]
    for op, q, s in match.alignment:
        if changes_only and op == "same":
            continue
        qs = _wrap(q, col)
        ss = _wrap(s, col)
        for i in range(max(len(qs), len(ss))):
            a = qs[i] if i < len(qs) else ""
            b = ss[i] if i < len(ss) else ""
            lines.append(f"{marks[op] if i == 0 else ' '} {a:<{col}} | {b}")
    lines.append("  (~ channel substitution, ! other substitution, + only in query, - only in source)")
    return "\n".join(lines) + "\n"


def _wrap(s: str, width: int) -> list[str]:
    if not s:
        return []
    out, cur = [], ""
    for w in s.split():
        if cur and len(cur) + 1 + len(w) > width:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        out.append(cur)
    return out


def render_alignment_html(matches: Match | list[Match], title: str = "unspin trace") -> str:
    """A self-contained page: per match, query and source side by side, substitutions highlighted."""
    if isinstance(matches, Match):
        matches = [matches]
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font:15px/1.5 system-ui,sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:2px 8px;width:50%}"
             ".sub_channel{background:#ffe08a}.sub{background:#f8b4b4}.ins{background:#c9e7ff}"
             ".del{background:#ddd;text-decoration:line-through}h2{margin-top:1.5em}"
             ".legend span{padding:0 6px;margin-right:8px}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             "<p class='legend'><span class='sub_channel'>channel substitution</span>"
             "<span class='sub'>other substitution</span><span class='ins'>only in query</span>"
             "<span class='del'>only in source</span></p>"]
    if not matches:
        parts.append("<p>No plausible source found.</p>")
    for m in matches:
        parts.append(f"<h2>{e(str(m.doc_id))} &mdash; score {m.score:.3f}, coverage {m.coverage:.3f}</h2>")
        q_html, s_html = [], []
        for op, q, s in m.alignment:
            cls = "" if op == "same" else f" class='{op}'"
            if q:
                q_html.append(f"<span{cls}>{e(q)}</span>")
            if s:
                s_html.append(f"<span{cls}>{e(s)}</span>")
        parts.append("<table><tr><th>query</th><th>source</th></tr><tr>"
                     f"<td>{' '.join(q_html)}</td><td>{' '.join(s_html)}</td></tr></table>")
    parts.append("</body></html>\n")
    return "".join(parts)


# ---- command line -----------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unspin trace", description="Find the original source of a spun text.")
    parser.add_argument("file", nargs="?", help="a .txt, .md or .html file, or - for stdin")
    parser.add_argument("--index", required=True, help="the SQLite index (python -m unspin.index add)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--jsonl", help="batch: rows {id, text}; one row {id, matches} out per row in, in order")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    parser.add_argument("--max-bytes", type=int, default=MAX_DOCUMENT_BYTES)
    args = parser.parse_args(argv)
    return run_command("unspin trace", lambda: _run(args))


def _run(args) -> int:
    from .index import Index

    if args.top < 1:
        raise InputError("--top must be at least 1")
    if not args.jsonl and not args.file:
        raise InputError("give a FILE (or - for stdin), or --jsonl Q.jsonl")
    if args.jsonl and args.file:
        raise InputError("give either a FILE or --jsonl, not both")
    with Index(args.index, create=False) as idx:
        if args.jsonl:
            return _batch(idx, args)
        text = read_document(args.file, args.max_bytes)
        matches = trace(idx, text, top=args.top)
        if args.format == "json":
            out = json.dumps({"file": args.file, "matches": [m.to_dict(alignment=True) for m in matches]},
                             ensure_ascii=False) + "\n"
        elif args.format == "html":
            out = render_alignment_html(matches, title=f"unspin trace: {args.file}")
        else:
            out = "".join(render_alignment_text(m, changes_only=True) + "\n" for m in matches) \
                or "no plausible source found\n"
        if args.output:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(out)
        else:
            sys.stdout.write(out)
    return 0


def _batch(idx, args) -> int:
    map_jsonl(args.jsonl, args.output,
              lambda text: {"matches": [m.to_dict() for m in trace(idx, text, top=args.top)]}, args.max_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
