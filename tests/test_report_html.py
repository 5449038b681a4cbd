"""The check report as HTML (`unspin.report.render_report` / `render_html`): what a reader sees
without hovering, and what it must never show (a weak guess presented as the original)."""
import html as html_lib
import json
import re

from unspin.detect import DEFAULT_THRESHOLDS, CheckResult, Span
from unspin.report import SURE_CONFIDENCE, render_html, render_report, render_sources, span_tier
from unspin.trace import Match

TEXT = "The minister mentioned the scheme was odd.\nThe U. N. sent 4, 000 extra troops."


def _result(spans, p=0.93, verdict="spun", text=TEXT):
    restored = text
    for s in sorted(spans, key=lambda s: -s.start):
        if s.suggestion is not None and s.confidence >= 0.5:
            restored = restored[:s.start] + s.suggestion + restored[s.end:]
    return CheckResult(p, verdict, spans, restored, n_words=15, text=text)


def _span(word, suggestion, confidence, **evidence):
    start = TEXT.index(word)
    return Span(start, start + len(word), word, suggestion, confidence, {"p_spun": 0.9, **evidence})


SURE = _span("mentioned", "said", 0.93, alternatives=[{"text": "stated", "posterior": 0.05}], sources=["moby"])
PROBABLE = _span("scheme", "plan", 0.6)
WEAK = _span("odd", "strange", 0.12)        # a suggestion too weak to be called the original
UNKNOWN = _span("extra", None, 0.8)         # flagged, no candidate at all


def _panel(page, name):
    m = re.search(rf'<div class="us-panel[^"]*" role="tabpanel" id="us-panel-{name}".*?</div>\n(?=<div class="us-panel|<script|\n)',
                  page, re.S)
    assert m, name
    return m.group(0)


def test_tiers_follow_the_confidence():
    assert [span_tier(s) for s in (SURE, PROBABLE, WEAK, UNKNOWN)] == ["sure", "likely", "unknown", "unknown"]
    assert span_tier(PROBABLE, min_confidence=0.7) == "unknown"
    assert SURE.confidence >= SURE_CONFIDENCE > PROBABLE.confidence


def test_confident_originals_are_visible_without_hovering():
    page = render_report(_result([SURE, PROBABLE, WEAK, UNKNOWN]), "a.txt")
    marked = _panel(page, "marked")
    visible = re.sub(r'<span class="us-tip".*?</span>(?=</button>)', "", marked, flags=re.S)  # drop the tooltips
    assert '<span class="us-orig">said</span><span class="us-obs">mentioned</span>' in visible
    assert '<span class="us-orig">plan</span><span class="us-obs">scheme</span>' in visible
    # the weak guess is never shown as the original, only as "original unknown"
    assert "strange" not in visible
    assert 'aria-label="odd: looks substituted, original unknown"' in visible
    assert 'aria-label="extra: looks substituted, original unknown"' in visible


def test_details_name_evidence_and_weak_guesses_as_such():
    page = render_report(_result([SURE, WEAK]), "a.txt")
    tips = re.findall(r'<span class="us-tip" role="tooltip" id="(us-tip-\d+)">(.*?)</span>(?=</button>)', page, re.S)
    assert len(tips) == 2
    sure_tip, weak_tip = tips[0][1], tips[1][1]
    assert "Likely original: said" in sure_tip and "stated" in sure_tip and "moby" in sure_tip
    assert "original unknown" in weak_tip and "only 12% confidence" in weak_tip
    for tip_id, _ in tips:  # each span is a keyboard-focusable button described by its tooltip
        assert f'aria-describedby="{tip_id}"' in page


def test_legend_gauge_and_meaning():
    page = render_report(_result([SURE]), "a.txt", thresholds=DEFAULT_THRESHOLDS)
    assert 'class="us-legend"' in page
    for words in ("confident", "probable original", "looks substituted, original unknown", "AI-rewriter mark"):
        assert words in page
    no_marks = render_report(_result([SURE], text=TEXT.replace("U. N.", "UN").replace("4, 000", "4,000")), "a.txt")
    assert "AI-rewriter mark" not in no_marks  # the legend names only what the text shows
    assert 'role="meter"' in page and 'aria-valuenow="93"' in page
    assert "A spinner almost surely rewrote this text" in page
    assert ">possibly<" in page and ">likely<" in page  # the verdict zones are named on the gauge
    foreign = render_report(CheckResult(None, "not English: cannot judge", [], "Der Plan.", text="Der Plan."), "b")
    assert "spin probability n/a" in foreign and 'role="meter"' not in foreign


def test_restored_text_highlights_each_applied_change():
    restored = _panel(render_report(_result([SURE, PROBABLE, WEAK, UNKNOWN]), "a.txt"), "restored")
    changes = re.findall(r'<ins class="us-changed" title="was: ([^"]*?) \(\d+% confidence\)">(.*?)</ins>', restored)
    assert changes == [("mentioned", "said"), ("scheme", "plan")]
    assert "odd" in restored and "strange" not in restored


def test_table_of_changes_and_its_data():
    page = render_report(_result([SURE, PROBABLE, WEAK, UNKNOWN]), "a.txt")
    table = _panel(page, "changes")
    rows = re.findall(r"<tr class=\"us-row-(\w+)\"><td>(.*?)</td><td>(.*?)</td>", table)
    assert rows == [("sure", "mentioned", "said"), ("likely", "scheme", "plan"), ("unknown", "odd", "<i>unknown</i>"),
                    ("unknown", "extra", "<i>unknown</i>")]
    weak_row = re.search(r'<tr class="us-row-unknown"><td>odd</td>.*?</tr>', table).group(0)
    assert "<td>&ndash;</td>" in weak_row and "too weak to call the original" in weak_row
    assert 'data-format="csv"' in table and 'data-format="json"' in table and "us-copy" in table
    data = re.search(r'<script type="application/json" class="us-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["spans"][0]["suggestion"] == "said"


def test_rewriter_marks_are_pointed_out():
    page = render_report(_result([]), "a.txt")
    assert "2 AI-rewriter marks" in page and "marks below are part of that evidence" in page
    assert "part of that evidence" not in render_report(_result([], p=0.1, verdict="not spun"), "a.txt")
    marked = _panel(page, "marked")
    assert re.findall(r'<span class="us-mark" title="[^"]*">(.*?)</span>', marked) == ["U. N.", "4, 000"]


def test_paragraphs_and_escaping():
    text = "First <b>paragraph</b> & more.\n\nSecond paragraph."
    page = render_report(CheckResult(0.1, "not spun", [], text, n_words=6, text=text), "<x>.txt")
    marked = _panel(page, "marked")
    assert marked.count("<p>") == 2 and "&lt;b&gt;paragraph&lt;/b&gt; &amp; more." in marked
    assert "&lt;x&gt;.txt" in page and "<x>" not in page


def test_the_page_is_self_contained():
    page = render_html(_result([SURE]), "a.txt", thresholds=DEFAULT_THRESHOLDS)
    assert page.startswith("<!doctype html>") and "<style>" in page and "window.unspinReport" in page
    assert '<meta name="viewport"' in page
    assert not re.search(r"""\s(src|href)\s*=\s*["']|@import|url\(|https?://""", page)
    assert render_report(_result([SURE]), "a.txt", thresholds=DEFAULT_THRESHOLDS) in page


def test_sources_show_coverage_and_embed_the_alignment():
    m = Match("doc-1", 0.91, 0.88, [("same", "The minister", "The minister"), ("sub_channel", "mentioned", "said")])
    part = render_sources([m])
    assert "doc-1" in part and "coverage 88%" in part
    frame = re.search(r'<iframe class="us-alignment"[^>]*srcdoc="([^"]*)"', part).group(1)
    assert "sub_channel" in html_lib.unescape(frame)
    assert "No plausible source" in render_sources([])


def test_a_weak_guess_on_a_word_that_reads_genuine_is_not_marked_but_kept():
    # The decoder's weak guess on a word whose P(substituted) is low: kept for a lower
    # --min-confidence, but neither marked nor counted as suspicious anywhere a reader looks.
    quiet = Span(TEXT.index("troops"), TEXT.index("troops") + 6, "troops", "soldiers", 0.08, {"p_spun": 0.05},
                 suspect=False)
    result = _result([SURE, quiet])
    assert result.suspicious_spans == [SURE] and len(result.spans) == 2
    assert [s["suspect"] for s in result.to_dict()["spans"]] == [True, False]
    page = render_report(result, "a.txt")
    visible = page.split("<script")[0]   # the embedded JSON keeps it, marked "suspect": false
    assert "soldiers" not in visible and "Changes (1)" in visible
    from unspin.report import render_text
    report = render_text(result, "a.txt")
    assert "soldiers" not in report and "1 suspicious spans" in report
