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
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

from .text import REWRITER_MARK_NAMES, find_rewriter_marks


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
    suspect: bool  # whether it reads as a substitution: only these are marked


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


def _marked_text(text: str, spans: Sequence[SpanView], min_confidence: float = 0.5, open_mark: str = "[",
                 close_mark: str = "]") -> str:
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s.start):
        out.append(text[pos:s.start])
        if span_tier(s, min_confidence) == "unknown":
            p_spun = s.confidence if s.suggestion is None else s.evidence.get("p_spun", s.confidence)
            out.append(f"{open_mark}{text[s.start:s.end]} -> ? {p_spun:.0%} spun{close_mark}")
        else:
            out.append(f"{open_mark}{text[s.start:s.end]} -> {s.suggestion} {s.confidence:.0%}{close_mark}")
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def render_text(result: CheckResultView, source: str, text: str | None = None, min_confidence: float = 0.5) -> str:
    """A terminal report of a check: score, verdict, warnings, the text with each span marked, and
    the span list. `text` is the checked text the span offsets index (default: `result.text`). A
    suggestion under `min_confidence` is not shown as the original: the span reads "original
    unknown" and the list names the weak guess as such.

    >>> from unspin.detect import CheckResult, Span
    >>> r = CheckResult(0.93, "spun", [Span(4, 13, "mentioned", "said", 0.8),
    ...                                Span(14, 16, "it", "that", 0.2, {"p_spun": 0.7})], "She said it.", n_words=3)
    >>> render_text(r, "note.txt", "She mentioned it.").splitlines()[4]
    'She [mentioned -> said 80%] [it -> ? 70% spun].'
    """
    if text is None:
        text = result.text
    suspicious = [s for s in result.spans if s.suspect]
    lines = [
        f"unspin check: {source}",
        f"spin probability: {format_probability(result.spin_probability)}  verdict: {result.verdict}"
        f"  ({result.n_words} words, {len(suspicious)} suspicious spans)",
    ]
    for w in result.warnings:
        lines.append(f"warning: {w}")
    if suspicious:
        lines.append("")
        lines.append(f"text, each suspicious span marked [observed -> likely original confidence] (at or above "
                     f"{min_confidence:.0%}) or [observed -> ? P(spun)] where the original is unknown:")
        for para in _marked_text(text, suspicious, min_confidence).split("\n"):
            lines.extend(textwrap.wrap(para, 100) or [""])
        lines.append("")
        lines.append("spans:")
        for s in suspicious:
            ev = s.evidence
            if s.suggestion is None:
                lines.append(f"  {s.start:>6}-{s.end:<6} {s.text!r} -> (original unknown)  p_spun {s.confidence:.2f}")
                continue
            if span_tier(s, min_confidence) == "unknown":
                lines.append(f"  {s.start:>6}-{s.end:<6} {s.text!r} -> (original unknown; best guess {s.suggestion!r} "
                             f"only {s.confidence:.2f})  p_spun {ev.get('p_spun', 0):.2f}")
                continue
            lines.append(
                f"  {s.start:>6}-{s.end:<6} {s.text!r} -> {s.suggestion!r}  confidence {s.confidence:.2f}"
                f"  p_spun {ev.get('p_spun', 0):.2f}  LM gain {ev.get('lm_gain_log10', 0):+.2f}"
                f"  via {','.join(ev.get('sources', []))}")
    return "\n".join(lines) + "\n"


# ---- the check report as HTML: one renderer for the CLI's page and the web page ---------------
STATIC_DIR = Path(__file__).resolve().parent / "static"
# A suggestion at or above this confidence is "confident": the strongest colour on the legend.
SURE_CONFIDENCE = 0.8
# What each verdict means, in one line for a first-time reader (the labels are unspin.detect's).
VERDICT_MEANINGS = {
    "spun": "A spinner almost surely rewrote this text, swapping words for synonyms.",
    "likely spun": "More likely machine-spun than not: many words look swapped for synonyms.",
    "possibly spun": "Some wording looks substituted; read the marked spans before deciding.",
    "not spun": "Reads as ordinary writing: few or no words look swapped.",
    "no text": "The input holds no words to judge.",
    "not English: cannot judge": "The models read English only, so this text was not judged.",
}


@runtime_checkable
class ThresholdsView(Protocol):
    """Where verdicts begin (`unspin.detect.VerdictThresholds` is one): the gauge's coloured zones.

    >>> from unspin.detect import VerdictThresholds
    >>> isinstance(VerdictThresholds(), ThresholdsView)
    True
    """

    spun: float
    likely: float
    possibly: float


def span_tier(span: SpanView, min_confidence: float = 0.5) -> str:
    """How a span is shown: "sure" (a suggestion at or above `SURE_CONFIDENCE`), "likely" (at or
    above `min_confidence`, the restore threshold), else "unknown": looks substituted, original
    unknown; a weaker suggestion is never shown as the original.

    >>> from unspin.detect import Span
    >>> [span_tier(Span(0, 3, "odd", s, c)) for s, c in (("old", 0.9), ("old", 0.6), ("old", 0.2), (None, 0.9))]
    ['sure', 'likely', 'unknown', 'unknown']
    """
    if span.suggestion is None or span.confidence < min_confidence:
        return "unknown"
    return "sure" if span.confidence >= SURE_CONFIDENCE else "likely"


def _pct(p: float) -> str:
    """A probability for people: whole percent, never rounded to a certainty it is not.

    >>> _pct(0.4), _pct(0.998), _pct(0.004), _pct(0.0)
    ('40%', '>99%', '<1%', '0%')
    """
    if 0 < p < 0.01:
        return "<1%"
    if 0.99 < p < 1:
        return ">99%"
    return f"{p:.0%}"


def _span_details(span: SpanView, tier: str, n: int) -> str:
    """The details of one span (shown on hover, focus or tap)."""
    e = html.escape
    ev = span.evidence
    rows = []
    if tier == "unknown":
        rows.append("<b>Looks substituted, original unknown.</b>")
        rows.append(f"Probability that a spinner put this here: {_pct(ev.get('p_spun', span.confidence))}.")
        if span.suggestion is not None:
            rows.append(f"The best candidate, {e(span.suggestion)!s}, has only {_pct(span.confidence)} confidence: "
                        f"not enough to call it the original.")
    else:
        rows.append(f"<b>Likely original: {e(span.suggestion)}</b> ({_pct(span.confidence)} confidence)")
        rows.append(f"Probability this was substituted: {_pct(ev.get('p_spun', 0))}.")
    alts = [a for a in ev.get("alternatives", []) if a.get("text") != span.suggestion]
    if alts and tier != "unknown":
        rows.append("Other candidates: " + ", ".join(f"{e(a['text'])} ({_pct(a['posterior'])})" for a in alts[:4]))
    if "lm_gain_log10" in ev:
        rows.append(f"Language model: the original reads {ev['lm_gain_log10']:+.1f} log<sub>10</sub> units "
                    f"more natural here.")
    if ev.get("sources"):
        rows.append("Found in: " + e(", ".join(ev["sources"])))
    return f'<span class="us-tip" role="tooltip" id="us-tip-{n}">' + "<br>".join(rows) + "</span>"


def _marked_html(text: str, spans: Sequence[SpanView], marks: Sequence[tuple[int, int, str]],
                 min_confidence: float) -> str:
    """The checked text with each span a focusable button (its original above when confident, its
    details in a tooltip) and each AI-rewriter mark outlined; paragraphs kept."""
    e = html.escape
    items = [(s.start, s.end, "span", s) for s in spans]
    taken = [(s.start, s.end) for s in spans]
    items += [(a, b, "mark", kind) for a, b, kind in marks if not any(a < y and x < b for x, y in taken)]
    items.sort(key=lambda it: it[0])
    out, pos = [], 0
    for n, (start, end, what, obj) in enumerate(items):
        if start < pos:  # overlapping input: keep the first
            continue
        out.append(e(text[pos:start]))
        observed = e(text[start:end])
        if what == "mark":
            out.append(f'<span class="us-mark" title="AI-rewriter mark: {e(REWRITER_MARK_NAMES.get(obj, obj))}">'
                       f'{observed}</span>')
        else:
            tier = span_tier(obj, min_confidence)
            label = (f"{text[start:end]}: likely original {obj.suggestion}, {_pct(obj.confidence)} confidence"
                     if tier != "unknown" else f"{text[start:end]}: looks substituted, original unknown")
            orig = f'<span class="us-orig">{e(obj.suggestion)}</span>' if tier != "unknown" else ""
            out.append(f'<button type="button" class="us-span us-{tier}" aria-describedby="us-tip-{n}" '
                       f'aria-label="{e(label)}" data-start="{start}" data-end="{end}">{orig}'
                       f'<span class="us-obs">{observed}</span>{_span_details(obj, tier, n)}</button>')
        pos = end
    out.append(e(text[pos:]))
    return _paragraphs("".join(out))


def _paragraphs(marked: str) -> str:
    """Paragraphs (split at blank lines or single newlines) as <p> elements."""
    return "\n".join(f"<p>{p.strip()}</p>" for p in marked.split("\n") if p.strip())


def _restored_html(text: str, spans: Sequence[SpanView], min_confidence: float) -> str:
    """The restored text, each applied change highlighted (its spun wording in the title)."""
    e = html.escape
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s.start):
        if s.suggestion is None or s.confidence < min_confidence or s.start < pos:
            continue
        out.append(e(text[pos:s.start]))
        out.append(f'<ins class="us-changed" title="was: {e(text[s.start:s.end])} ({_pct(s.confidence)} confidence)">'
                   f'{e(s.suggestion)}</ins>')
        pos = s.end
    out.append(e(text[pos:]))
    return _paragraphs("".join(out))


def _changes_table(spans: Sequence[SpanView], min_confidence: float) -> str:
    e = html.escape
    rows = []
    for s in sorted(spans, key=lambda s: s.start):
        tier = span_tier(s, min_confidence)
        ev = s.evidence
        original = e(s.suggestion) if tier != "unknown" else '<i>unknown</i>'
        evidence = [f"P(substituted) {_pct(ev.get('p_spun', s.confidence))}"]
        if tier == "unknown" and s.suggestion is not None:
            evidence.append(f"best candidate {e(s.suggestion)} at {_pct(s.confidence)}: too weak to call the original")
        if "lm_gain_log10" in ev:
            evidence.append(f"LM gain {ev['lm_gain_log10']:+.1f}")
        if ev.get("sources"):
            evidence.append("via " + e(", ".join(ev["sources"])))
        conf = _pct(s.confidence) if tier != "unknown" else "&ndash;"
        rows.append(f'<tr class="us-row-{tier}"><td>{e(s.text)}</td><td>{original}</td><td>{conf}</td>'
                    f'<td>{"; ".join(evidence)}</td></tr>')
    if not rows:
        return "<p>No suspicious spans.</p>"
    return ('<div class="us-table-wrap"><table class="us-changes"><thead><tr><th scope="col">observed</th>'
            '<th scope="col">proposed original</th><th scope="col">confidence</th><th scope="col">evidence</th>'
            '</tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>")


def _gauge(p: float | None, verdict: str, thresholds: ThresholdsView | None) -> str:
    e = html.escape
    if p is None:
        return ('<div class="us-gauge us-gauge-none" role="img" aria-label="spin probability: not judged">'
                '<div class="us-gauge-track"></div></div>')
    zones = ""
    if thresholds is not None:
        # one coloured zone per verdict, as wide as its range of probabilities, named below the track
        bounds = [0.0, thresholds.possibly, thresholds.likely, thresholds.spun, 1.0]
        names = ("not spun", "possibly", "likely", "spun")
        colours = ("#bfe3cc", "#f8e7a6", "#f8c9a0", "#f2a99c")
        stops = ", ".join(f"{c} {100 * a:.1f}% {100 * b:.1f}%" for c, a, b in zip(colours, bounds, bounds[1:]))
        zones = f' style="background: linear-gradient(90deg, {stops})"'
        labels = "".join(f'<span style="left:{50 * (a + b):.1f}%">{n}</span>'
                         for n, a, b in zip(names, bounds, bounds[1:]) if b - a >= 0.08)
    else:
        labels = '<span style="left:3%">not spun</span><span style="left:97%">spun</span>'
    return (f'<div class="us-gauge" role="meter" aria-valuemin="0" aria-valuemax="100" '
            f'aria-valuenow="{round(100 * p)}" aria-label="spin probability {_pct(p)}">'
            f'<div class="us-gauge-track"{zones}><span class="us-needle" style="left:{100 * p:.1f}%"></span></div>'
            f'<div class="us-gauge-scale" aria-hidden="true">{labels}</div></div>')


def _legend(min_confidence: float, with_marks: bool) -> str:
    return ('<ul class="us-legend" aria-label="legend">'
            f'<li><span class="us-swatch us-sure"><span class="us-orig">original</span>spun</span> '
            f'confident: likely original shown above (&ge; {SURE_CONFIDENCE:.0%})</li>'
            f'<li><span class="us-swatch us-likely"><span class="us-orig">original</span>spun</span> '
            f'probable original ({min_confidence:.0%}&ndash;{SURE_CONFIDENCE:.0%})</li>'
            '<li><span class="us-swatch us-unknown">word</span> looks substituted, original unknown</li>'
            + ('<li><span class="us-swatch us-mark">U. N.</span> AI-rewriter mark</li>' if with_marks else "")
            + '</ul>')


def render_report(result: CheckResultView, source: str, text: str | None = None, *,
                  thresholds: ThresholdsView | None = None, min_confidence: float = 0.5,
                  sources_html: str = "") -> str:
    """The check report as an HTML fragment (`<section class="us-report">`): the verdict with a gauge
    and its meaning, a legend, and three tabs: the marked text (confident originals shown above
    their spans, details on hover, focus or tap), the restored text and the table of changes (with
    copy and CSV/JSON download). The web page and `render_html` both show exactly this;
    `sources_html` (from `render_sources`) adds a trace. Needs `report.css` and `report.js` from
    `STATIC_DIR` (the tabs and downloads; without script every part is shown in turn).

    >>> from unspin.detect import CheckResult, Span
    >>> r = CheckResult(0.93, "spun", [Span(4, 13, "mentioned", "said", 0.9)], "She said it.", n_words=3)
    >>> '<span class="us-orig">said</span><span class="us-obs">mentioned</span>' in render_report(r, "a.txt", "She mentioned it.")
    True
    """
    e = html.escape
    if text is None:
        text = result.text
    p = result.spin_probability
    spans = [s for s in result.spans if s.suspect]
    tiers = [span_tier(s, min_confidence) for s in spans]
    marks = find_rewriter_marks(text)
    n_known = sum(t != "unknown" for t in tiers)
    counts = (f"{result.n_words:,} words &middot; {n_known} likely original{'s' * (n_known != 1)} found &middot; "
              f"{len(spans) - n_known} span{'s' * (len(spans) - n_known != 1)} look substituted, original unknown")
    mark_note = ""
    if marks:
        kinds = sorted({REWRITER_MARK_NAMES[k] for _, _, k in marks})
        mark_note = (f'<p class="us-marks-note"><b>{len(marks)} AI-rewriter mark{"s" * (len(marks) != 1)}</b> '
                     f'({e("; ".join(kinds))}): formatting that paraphrasing tools leave behind. They count toward '
                     f'the spin probability; outlined in blue in the text.</p>')
    meaning = VERDICT_MEANINGS.get(result.verdict, "")
    likely_at = thresholds.likely if thresholds is not None else 0.5
    if marks and p is not None and p >= likely_at:  # the marks weigh in the verdict: say so beside it
        meaning += " The AI-rewriter marks below are part of that evidence."
    warnings = "".join(f'<p class="us-warn">{e(w)}</p>' for w in result.warnings)
    data = json.dumps(result.to_dict(), ensure_ascii=False).replace("</", "<\\/")
    verdict_class = "us-v-" + "".join(ch if ch.isalnum() else "-" for ch in result.verdict.split(":")[0])
    return f"""<section class="us-report" aria-label="unspin report: {e(source)}">
<header class="us-verdict {verdict_class}">
<div class="us-source">{e(source)}</div>
<div class="us-verdict-line"><span class="us-verdict-label">{e(result.verdict)}</span>
<span class="us-prob">spin probability {e(_pct(p) if p is not None else "n/a")}</span></div>
{_gauge(p, result.verdict, thresholds)}
<p class="us-meaning">{e(meaning)}</p>
<p class="us-counts">{counts}</p>{mark_note}{warnings}
</header>
{_legend(min_confidence, bool(marks))}
<div class="us-tabs" role="tablist" aria-label="views">
<button type="button" role="tab" class="us-tab" aria-selected="true" aria-controls="us-panel-marked" id="us-tab-marked">Marked text</button>
<button type="button" role="tab" class="us-tab" aria-selected="false" aria-controls="us-panel-restored" id="us-tab-restored" tabindex="-1">Restored text</button>
<button type="button" role="tab" class="us-tab" aria-selected="false" aria-controls="us-panel-changes" id="us-tab-changes" tabindex="-1">Changes ({len(spans)})</button>
</div>
<div class="us-panel us-text" role="tabpanel" id="us-panel-marked" aria-labelledby="us-tab-marked">
<h2 class="us-print-only">Marked text</h2>
{_marked_html(text, spans, marks, min_confidence) or "<p><i>(no text)</i></p>"}
</div>
<div class="us-panel us-text" role="tabpanel" id="us-panel-restored" aria-labelledby="us-tab-restored">
<h2 class="us-print-only">Restored text</h2>
<p class="us-hint">Likely original wording: changes at or above {min_confidence:.0%} confidence applied and highlighted
(hover one to see what the spun text said). Words whose original is unknown are left as they are.</p>
{_restored_html(text, spans, min_confidence) or "<p><i>(no text)</i></p>"}
</div>
<div class="us-panel" role="tabpanel" id="us-panel-changes" aria-labelledby="us-tab-changes">
<h2 class="us-print-only">Changes</h2>
<div class="us-actions"><button type="button" class="us-copy">Copy table</button>
<button type="button" class="us-download" data-format="csv">Download CSV</button>
<button type="button" class="us-download" data-format="json">Download JSON</button>
<span class="us-status" role="status"></span></div>
{_changes_table(spans, min_confidence)}
</div>
{sources_html}
<script type="application/json" class="us-data">{data}</script>
</section>"""


def render_sources(matches: Sequence[MatchView], alignment_page: str | None = None) -> str:
    """The trace part of a report: each source found with its coverage, and the alignment page
    (`render_alignment_html` of the same matches, by default) embedded in a frame.

    >>> from unspin.trace import Match
    >>> "coverage 90%" in render_sources([Match("doc-1", 0.9, 0.9, [("same", "a b", "a b")])])
    True
    """
    e = html.escape
    matches = list(matches)
    if not matches:
        return ('<section class="us-sources" aria-label="sources"><h2>Sources</h2>'
                '<p>No plausible source found in the index.</p></section>')
    items = "".join(f'<li><b>{e(str(m.doc_id))}</b>: coverage {_pct(m.coverage)} of the words '
                    f'(score {m.score:.2f}){"" if getattr(m, "reliable", True) else " &middot; short text: weak evidence"}</li>'
                    for m in matches)
    page = alignment_page if alignment_page is not None else render_alignment_html(matches, title="alignment")
    return (f'<section class="us-sources" aria-label="sources"><h2>Sources found</h2><ul>{items}</ul>'
            f'<h3>Alignment with the source</h3><iframe class="us-alignment" title="alignment with the source" '
            f'srcdoc="{e(page, quote=True)}"></iframe></section>')


def page_assets() -> tuple[str, str]:
    """(the report's CSS, its script), read from `STATIC_DIR`.

    >>> css, script = page_assets()
    >>> ".us-span" in css and "window.unspinReport" in script
    True
    """
    return ((STATIC_DIR / "report.css").read_text(encoding="utf-8"),
            (STATIC_DIR / "report.js").read_text(encoding="utf-8"))


def render_html(result: CheckResultView, source: str, text: str | None = None, *,
                thresholds: ThresholdsView | None = None, min_confidence: float = 0.5,
                sources_html: str = "") -> str:
    """A self-contained HTML page of a check: `render_report` with its CSS and script inlined
    (no file, font or script from elsewhere). `text` is the checked text the span offsets index
    (default: `result.text`).

    >>> from unspin.detect import CheckResult, Span
    >>> r = CheckResult(0.93, "spun", [Span(4, 13, "mentioned", "said", 0.8)], "She said it.", n_words=3)
    >>> page = render_html(r, "note.txt", "She mentioned it.")
    >>> page.startswith("<!doctype html>"), 'class="us-orig">said<' in page, "http" in page
    (True, True, False)
    """
    css, script = page_assets()
    body = render_report(result, source, text, thresholds=thresholds, min_confidence=min_confidence,
                         sources_html=sources_html)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>unspin check: {html.escape(source)}</title>\n<style>\n{css}</style></head>\n'
            f'<body class="us-page">\n<main>\n{body}\n</main>\n<script>\n{script}</script>\n</body></html>\n')


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
                     f"<div class='pane'><h3>copy (the query)</h3>{_alignment_marked_html(query_text, q_marks, outside)}</div>"
                     f"<div class='pane'><h3>source {e(str(m.doc_id))}</h3>{_alignment_marked_html(source, s_marks, [])}</div>"
                     "</div>")
        restored = restorations.get(m.doc_id)
        if restored is not None and restored[1]:  # a verbatim copy restores nothing
            text, changes = restored
            marks = [(a, b, "restored", None, f"copy: {old}") for a, b, old, _new in changes]
            parts.append(f"<div class='pane' style='margin-top:1em'><h3>restored from {e(str(m.doc_id))} "
                         f"({len(changes)} changes)</h3>{_alignment_marked_html(text, marks, [])}</div>")
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


def _alignment_marked_html(text: str, marks: list[tuple[int, int, str, str | None, str]],
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
