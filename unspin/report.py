"""Render results for people: check reports and trace alignments, as terminal text or self-contained HTML.

The result objects call these as methods (`CheckResult.to_text`, `CheckResult.to_html`,
`Match.to_text`, `Match.to_html`). This module imports neither `unspin.detect` nor
`unspin.trace`, so both can import it: it names what it reads of their results below
(`SpanView`, `CheckResultView`, `MatchView`), which those classes satisfy.

>>> from unspin.detect import CheckResult
>>> print(render_text(CheckResult(0.05, "not spun", [], "Fine.", n_words=1), "note.txt", "Fine."), end="")
unspin check: note.txt
spin probability: 0.05  verdict: not spun  (1 words, 0 suspicious spans)
"""
from __future__ import annotations

import html
import json
import textwrap
from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class SpanView(Protocol):
    """What a renderer reads of a span (`unspin.detect.Span` is one).

    >>> from unspin.detect import Span
    >>> isinstance(Span(0, 3, "odd", "old", 0.9), SpanView)
    True
    """

    start: int
    end: int
    text: str
    suggestion: str | None
    confidence: float
    evidence: dict


@runtime_checkable
class CheckResultView(Protocol):
    """What a renderer reads of a check result (`unspin.detect.CheckResult` is one).

    >>> from unspin.detect import CheckResult
    >>> isinstance(CheckResult(0.1, "not spun", [], "Fine."), CheckResultView)
    True
    """

    spin_probability: float | None
    verdict: str
    spans: Sequence[SpanView]
    text: str
    n_words: int
    warnings: list[str]

    def to_dict(self) -> dict: ...


@runtime_checkable
class MatchView(Protocol):
    """What a renderer reads of a trace match (`unspin.trace.Match` is one).

    >>> from unspin.trace import Match
    >>> isinstance(Match("doc-1", 0.9, 0.9), MatchView)
    True
    """

    doc_id: str
    score: float
    coverage: float
    alignment: list[tuple[str, str, str]]


def format_probability(p: float | None) -> str:
    """A spin probability for people: two decimals, or "n/a" when the text could not be judged.

    >>> format_probability(0.9718), format_probability(None)
    ('0.97', 'n/a')
    """
    return "n/a" if p is None else f"{p:.2f}"


def _marked_text(text: str, spans: Sequence[SpanView], open_mark: str = "[", close_mark: str = "]") -> str:
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s.start):
        out.append(text[pos:s.start])
        if s.suggestion is None:
            out.append(f"{open_mark}{text[s.start:s.end]} -> ? {s.confidence:.0%} spun{close_mark}")
        else:
            out.append(f"{open_mark}{text[s.start:s.end]} -> {s.suggestion} {s.confidence:.0%}{close_mark}")
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def render_text(result: CheckResultView, source: str, text: str | None = None) -> str:
    """A terminal report of a check: score, verdict, warnings, the text with each span marked, and
    the span list. `text` is the checked text the span offsets index (default: `result.text`).

    >>> from unspin.detect import CheckResult, Span
    >>> r = CheckResult(0.93, "spun", [Span(4, 13, "mentioned", "said", 0.8)], "She said it.", n_words=3)
    >>> render_text(r, "note.txt", "She mentioned it.").splitlines()[4]
    'She [mentioned -> said 80%] it.'
    """
    if text is None:
        text = result.text
    lines = [
        f"unspin check: {source}",
        f"spin probability: {format_probability(result.spin_probability)}  verdict: {result.verdict}"
        f"  ({result.n_words} words, {len(result.spans)} suspicious spans)",
    ]
    for w in result.warnings:
        lines.append(f"warning: {w}")
    if result.spans:
        lines.append("")
        lines.append("text, each suspicious span marked [observed -> likely original confidence]"
                     " or [observed -> ? P(spun)] where no original is known:")
        for para in _marked_text(text, result.spans).split("\n"):
            lines.extend(textwrap.wrap(para, 100) or [""])
        lines.append("")
        lines.append("spans:")
        for s in result.spans:
            ev = s.evidence
            if s.suggestion is None:
                lines.append(f"  {s.start:>6}-{s.end:<6} {s.text!r} -> (original unknown)  p_spun {s.confidence:.2f}")
                continue
            lines.append(
                f"  {s.start:>6}-{s.end:<6} {s.text!r} -> {s.suggestion!r}  confidence {s.confidence:.2f}"
                f"  p_spun {ev.get('p_spun', 0):.2f}  LM gain {ev.get('lm_gain_log10', 0):+.2f}"
                f"  via {','.join(ev.get('sources', []))}")
    return "\n".join(lines) + "\n"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>unspin check: {title}</title>
<style>
body {{ font: 16px/1.6 Georgia, serif; max-width: 50em; margin: 2em auto; color: #222; }}
header {{ font-family: sans-serif; border-bottom: 1px solid #ccc; margin-bottom: 1em; }}
.score {{ font-size: 1.4em; font-weight: bold; }}
mark {{ background: #ffe08a; border-bottom: 2px solid #d08000; position: relative; cursor: help; }}
mark.low {{ background: #fff3cc; border-bottom: 1px dashed #d0a000; }}
mark .tip {{ display: none; position: absolute; left: 0; top: 1.6em; z-index: 2; background: #333; color: #fff;
  font: 13px/1.4 sans-serif; padding: .4em .6em; border-radius: 4px; white-space: nowrap; }}
mark:hover .tip, mark:focus .tip {{ display: block; }}
p {{ white-space: pre-wrap; }}
.warn {{ color: #a33; }}
</style></head><body>
<header><div class="score">spin probability {prob}: {verdict}</div>
<div>{n_words} words, {n_spans} suspicious spans. Hover a highlighted span to see the likely original
and the evidence.</div>{warnings}</header>
{body}
</body></html>
"""


def render_html(result: CheckResultView, source: str, text: str | None = None) -> str:
    """A self-contained HTML page of a check: each span highlighted, its evidence shown on hover.
    `text` is the checked text the span offsets index (default: `result.text`).

    >>> from unspin.detect import CheckResult, Span
    >>> r = CheckResult(0.93, "spun", [Span(4, 13, "mentioned", "said", 0.8)], "She said it.", n_words=3)
    >>> 'data-suggestion="said">mentioned<' in render_html(r, "note.txt", "She mentioned it.")
    True
    """
    if text is None:
        text = result.text
    parts, pos = [], 0
    for s in sorted(result.spans, key=lambda s: s.start):
        parts.append(html.escape(text[pos:s.start]))
        ev = s.evidence
        alts = ", ".join(f"{a['text']} ({a['posterior']:.2f})" for a in ev.get("alternatives", []))
        if s.suggestion is None:
            tip = f"looks substituted (P(spun) {s.confidence:.2f}); no likely original in the channel"
        else:
            tip = (f"original: {html.escape(s.suggestion)} &middot; confidence {s.confidence:.2f} &middot; "
                   f"P(spun) {ev.get('p_spun', 0):.2f} &middot; LM gain {ev.get('lm_gain_log10', 0):+.2f} "
                   f"&middot; via {html.escape(', '.join(ev.get('sources', [])))}"
                   + (f"<br>alternatives: {html.escape(alts)}" if alts else ""))
        cls = "" if s.confidence >= 0.5 else ' class="low"'
        parts.append(f'<mark{cls} tabindex="0" data-suggestion="{html.escape(s.suggestion or "")}">'
                     f'{html.escape(text[s.start:s.end])}<span class="tip">{tip}</span></mark>')
        pos = s.end
    parts.append(html.escape(text[pos:]))
    body = "\n".join(f"<p>{p}</p>" for p in "".join(parts).split("\n") if p.strip())
    warnings = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in result.warnings)
    return _PAGE.format(title=html.escape(source), prob=format_probability(result.spin_probability),
                        verdict=html.escape(result.verdict),
                        n_words=result.n_words, n_spans=len(result.spans), warnings=warnings, body=body)


def render_json(result: CheckResultView, **extra) -> str:
    """One JSON object: the `extra` fields first (e.g. the file name), then `result.to_dict()`.
    An `extra` field wins over the result's own field of the same name: the CLI, which read the
    file, knows its `input_format` even when it hands the engine the already extracted text.

    >>> from unspin.detect import CheckResult
    >>> render_json(CheckResult(None, "not English: cannot judge", [], "Der Plan."), file="a.txt")[:45]
    '{"file": "a.txt", "spin_probability": null, "'
    """
    d = result.to_dict()
    return json.dumps({**extra, **{k: v for k, v in d.items() if k not in extra}}, ensure_ascii=False)


# ---- trace alignments ---------------------------------------------------------------------
def render_alignment_text(match: MatchView, width: int = 100, changes_only: bool = False) -> str:
    """A side-by-side view: query | source, with a marker per row (`changes_only`: skip identical rows).

    >>> from unspin.trace import Match
    >>> m = Match("doc-1", 0.9, 0.9, [("same", "the plan", "the plan"), ("sub_channel", "scheme", "idea")])
    >>> render_alignment_text(m, width=40).splitlines()[4]
    '~ scheme            | idea'
    """
    col = max((width - 5) // 2, 10)
    marks = {"same": " ", "sub": "!", "sub_channel": "~", "moved": ">", "ins": "+", "del": "-"}
    lines = [f"source {match.doc_id}  score {match.score:.3f}  coverage {match.coverage:.3f}"]
    segments = getattr(match, "segments", None) or []
    if segments:
        lines.append("explains " + ", ".join(f"characters {g.start}-{g.end} ({g.kind})" for g in segments))
    lines += [f"  {'query':<{col}} | source", "  " + "-" * (2 * col + 3)]
    for op, q, s in match.alignment:
        if changes_only and op == "same":
            continue
        qs = _wrap(q, col)
        ss = _wrap(s, col)
        for i in range(max(len(qs), len(ss))):
            a = qs[i] if i < len(qs) else ""
            b = ss[i] if i < len(ss) else ""
            lines.append(f"{marks[op] if i == 0 else ' '} {a:<{col}} | {b}")
    lines.append("  (~ channel substitution, ! other substitution, > moved, + only in query, - only in source)")
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


def render_alignment_html(matches: MatchView | Sequence[MatchView], title: str = "unspin trace",
                          query_text: str | None = None, source_texts: dict[str, str] | None = None,
                          restorations: dict[str, tuple[str, list[tuple[int, int, str, str]]]] | None = None) -> str:
    """A self-contained page: per match, query and source side by side, substitutions highlighted.

    With `query_text` and the sources' texts (`source_texts`, by doc_id) both sides keep their
    punctuation and paragraphs, the parts of the query each source explains are shown as
    segments, and each replaced block is linked to its partner on the other side (both light up
    on hover or keyboard focus). `restorations` (by doc_id: the query restored from that source
    and its changes (start, end in the restored text, the copy's wording, the source's)) adds
    what a reader gets back. Without the texts, the rows are shown word by word.

    >>> from unspin.trace import Match
    >>> page = render_alignment_html(Match("doc-1", 0.9, 0.9, [("sub", "odd", "old")]))
    >>> "<span class='sub'>odd</span>" in page
    True
    """
    if isinstance(matches, MatchView):  # one match
        matches = [matches]
    matches = list(matches)
    source_texts = source_texts or {}
    restorations = restorations or {}
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{e(title)}</title><style>"
             "body{font:15px/1.55 system-ui,sans-serif;margin:0 auto;padding:1em;max-width:1200px;color:#1b1b1b}"
             "h1{font-size:1.3em;overflow-wrap:anywhere}h2{margin-top:1.6em;font-size:1.1em;overflow-wrap:anywhere}"
             "table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:2px 8px;width:50%}"
             ".cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}"
             "@media (max-width:700px){.cols{grid-template-columns:1fr}}"
             ".pane{border:1px solid #ccc;border-radius:6px;padding:.6em .8em;white-space:pre-wrap;"
             "overflow-wrap:anywhere;min-width:0}.pane h3{margin:0 0 .4em;font-size:.95em;color:#555;"
             "white-space:normal}"
             ".sub_channel{background:#ffe08a}.sub{background:#f8b4b4}.ins{background:#c9e7ff}"
             ".moved{background:#e3d3f5}"
             ".del{background:#ddd;text-decoration:line-through}.outside{color:#8a8a8a}"
             ".unused{color:#8a8a8a}.restored{background:#c8f0c8}"
             "[data-pair]{cursor:pointer;border-radius:3px}[data-pair].on,[data-pair]:focus{outline:2px solid #1a5fb4;"
             "outline-offset:1px}"
             ".legend span{padding:0 6px;margin-right:8px;display:inline-block}"
             ".segs{margin:.3em 0 .8em;padding-left:1.2em}"
             ".seg-verbatim{border-bottom:3px solid #2f7d32}.seg-spun{border-bottom:3px solid #c77c00}"
             ".seg-rewritten{border-bottom:3px solid #8e44ad}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             "<p class='legend'><span class='sub_channel'>channel substitution</span>"
             "<span class='sub'>other substitution</span><span class='moved'>moved</span>"
             "<span class='ins'>only in the copy</span>"
             "<span class='del'>only in the source</span><span class='outside'>not from this source</span>"
             "<span class='restored'>restored from the source</span></p>"]
    if not matches:
        parts.append("<p>No plausible source found.</p>")
    for k, m in enumerate(matches):
        segments = list(getattr(m, "segments", []) or [])
        parts.append(f"<h2>{e(str(m.doc_id))} &mdash; score {m.score:.3f}, coverage {m.coverage:.3f}</h2>")
        source = source_texts.get(m.doc_id)
        spans = list(getattr(m, "row_spans", []) or [])
        if query_text is None or source is None or len(spans) != len(m.alignment):
            parts.append(_alignment_table(m))
            continue
        if segments:
            parts.append("<ul class='segs'>" + "".join(
                f"<li><span class='seg-{e(g.kind)}'>{e(g.kind)}</span>: characters {g.start}-{g.end} "
                f"&ldquo;{e(_clip(query_text[g.start:g.end]))}&rdquo;</li>" for g in segments) + "</ul>")
        q_marks, s_marks = [], []
        for i, ((op, _q, _s), (q1, q2, s1, s2)) in enumerate(zip(m.alignment, spans)):
            if op == "same":
                continue
            pair = f"m{k}r{i}"
            inside = any(g.start <= q1 and q2 <= g.end for g in segments) if q1 >= 0 else False
            if q1 >= 0 and inside:
                q_marks.append((q1, q2, op, pair if s1 >= 0 else None, _s))
            if s1 >= 0:
                long_gap = op == "del" and len(_s.split()) > 6
                s_marks.append((s1, s2, "unused" if long_gap else op,
                                pair if q1 >= 0 and inside else None, _q))
        outside = _outside(segments, len(query_text))
        parts.append("<div class='cols'>"
                     f"<div class='pane'><h3>copy (the query)</h3>{_marked_html(query_text, q_marks, outside)}</div>"
                     f"<div class='pane'><h3>source {e(str(m.doc_id))}</h3>{_marked_html(source, s_marks, [])}</div>"
                     "</div>")
        restored = restorations.get(m.doc_id)
        if restored is not None and restored[1]:  # a verbatim copy restores nothing
            text, changes = restored
            marks = [(a, b, "restored", None, f"copy: {old}") for a, b, old, _new in changes]
            parts.append(f"<div class='pane' style='margin-top:1em'><h3>restored from {e(str(m.doc_id))} "
                         f"({len(changes)} changes)</h3>{_marked_html(text, marks, [])}</div>")
    parts.append("<script>document.querySelectorAll('[data-pair]').forEach(function(el){"
                 "function set(on){document.querySelectorAll('[data-pair=\"'+el.dataset.pair+'\"]')"
                 ".forEach(function(x){x.classList.toggle('on',on);});}"
                 "el.addEventListener('mouseenter',function(){set(true);});"
                 "el.addEventListener('mouseleave',function(){set(false);});"
                 "el.addEventListener('focus',function(){set(true);});"
                 "el.addEventListener('blur',function(){set(false);});});</script>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _clip(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 1] + "…"


def _outside(segments, n: int) -> list[tuple[int, int]]:
    """Character ranges of a text of length n outside the given segments."""
    out, pos = [], 0
    for g in sorted(segments, key=lambda g: g.start):
        if g.start > pos:
            out.append((pos, g.start))
        pos = max(pos, g.end)
    if segments and pos < n:
        out.append((pos, n))
    return out


def _marked_html(text: str, marks: list[tuple[int, int, str, str | None, str]],
                 dim: list[tuple[int, int]]) -> str:
    """`text` escaped, with each mark (start, end, class, pair id or None, partner text) wrapped in
    a span (a focusable one, titled with its partner, when it has a pair), and the `dim` ranges
    wrapped as 'outside'."""
    e = html.escape
    events = sorted([(a, b, cls, pair, partner) for a, b, cls, pair, partner in marks if 0 <= a < b <= len(text)])
    out, pos = [], 0

    def plain(a: int, b: int) -> None:
        # the unmarked text [a, b), with what lies outside the segments dimmed
        cur = a
        for d1, d2 in dim:
            lo, hi = max(d1, cur), min(d2, b)
            if lo < hi and any(c.isalnum() for c in text[lo:hi]):
                out.append(e(text[cur:lo]))
                out.append(f"<span class='outside'>{e(text[lo:hi])}</span>")
                cur = hi
        out.append(e(text[cur:b]))

    for a, b, cls, pair, partner in events:
        if a < pos:
            continue
        plain(pos, a)
        attrs = f" class='{cls}'"
        if pair:
            attrs += f" data-pair='{pair}' tabindex='0'"
        if partner:
            attrs += f" title='{e(partner, quote=True)}'"
        out.append(f"<span{attrs}>{e(text[a:b])}</span>")
        pos = b
    plain(pos, len(text))
    return "".join(out)


def _alignment_table(m: MatchView) -> str:
    e = html.escape
    q_html, s_html = [], []
    for op, q, s in m.alignment:
        cls = "" if op == "same" else f" class='{op}'"
        if q:
            q_html.append(f"<span{cls}>{e(q)}</span>")
        if s:
            s_html.append(f"<span{cls}>{e(s)}</span>")
    return ("<table><tr><th>query</th><th>source</th></tr><tr>"
            f"<td>{' '.join(q_html)}</td><td>{' '.join(s_html)}</td></tr></table>")
