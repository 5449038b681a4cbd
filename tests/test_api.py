"""The Python API: plain text or HTML in, result objects that render themselves, and `Engine.pipe`."""
import json
import pickle
from dataclasses import replace

import pytest

import unspin
from unspin import detect
from unspin.decode import ChannelWeights, DecoderConfig
from unspin.detect import NO_TEXT, NOT_ENGLISH, Calibration, CheckResult, Engine
from unspin.inputs import reduce_input
from unspin.report import render_alignment_html, render_alignment_text, render_html, render_json, render_text
from unspin.trace import Match

SPUN = "The minister mentioned the scheme would price extra than expected."
RESTORED = "The minister said the plan would cost more than expected."
PAGE = ("<!doctype html><html><head><title>Budget</title></head><body><article>"
        f"<p>{SPUN}</p></article></body></html>")
FOREIGN = "Der Minister sagte, dass der Plan mehr kosten würde als erwartet."
# Distinct texts, so that a result out of order would show.
STREAM = [SPUN, "The police said the road was closed.", "", FOREIGN,
          "The infantrymen returned from the entrance traces.", "Extra troops arrived at the front lines on monday.",
          "She said the report was late.", PAGE]


@pytest.fixture(scope="module")
def engine(tiny_lm, tiny_channel):
    # Three of ten words spun: a prior for heavy spinning, as the tiny LM's scale is not the real one's.
    heavy = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6))
    return Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), heavy)


def _spans(result):
    return [(s.text, s.suggestion) for s in result.spans]


# ---- input format ------------------------------------------------------------------------
def test_plain_text_is_checked_as_given(engine):
    result = engine.check(SPUN)
    assert result.input_format == "text" and result.text == SPUN
    assert result.restored == RESTORED
    d = result.to_dict()
    assert d["input_format"] == "text" and "text" not in d  # the caller has the text already


def test_an_html_document_is_reduced_to_its_main_text(engine):
    result = engine.check(PAGE)
    assert result.input_format == "html"
    assert "<" not in result.text and SPUN in result.text
    assert result.restored.strip() == RESTORED
    assert _spans(result) == _spans(engine.check(SPUN))
    for s in result.spans:  # offsets index the reduced text, which the result carries
        assert result.text[s.start:s.end] == s.text
    d = json.loads(json.dumps(result.to_dict()))
    assert d["input_format"] == "html" and d["text"] == result.text


def test_html_flag_decides_explicitly(engine):
    fragment = f"<div><p>{SPUN}</p></div>"  # no doctype, no <html>: not clearly a document
    assert engine.check(fragment).input_format == "text"
    forced = engine.check(fragment, html=True)
    assert forced.input_format == "html" and forced.text.strip() == SPUN
    kept = engine.check(PAGE, html=False)
    assert kept.input_format == "text" and kept.text == PAGE


def test_text_that_mentions_a_tag_is_not_html():
    text = "Wrap the title in an <h1> element and the body in <body> tags."
    assert reduce_input(text) == (text, "text")


def test_restore_takes_the_same_inputs(engine):
    plain = engine.restore(SPUN)
    assert plain.text == RESTORED and plain.input_format == "text"
    page = engine.restore(PAGE)
    assert page.text.strip() == RESTORED and page.input_format == "html"
    assert [s.suggestion for s in page.changes] == [s.suggestion for s in plain.changes]


def test_module_functions_take_html(engine, monkeypatch):
    monkeypatch.setattr(detect, "default_engine", lambda: engine)
    assert unspin.check(PAGE).input_format == "html"
    assert unspin.check(PAGE, html=False).input_format == "text"
    assert unspin.restore(PAGE).text.strip() == RESTORED


# ---- texts that cannot be judged -----------------------------------------------------------
def test_non_english_has_no_probability(engine):
    result = engine.check(FOREIGN)
    assert result.spin_probability is None and result.verdict == NOT_ENGLISH == "not English: cannot judge"
    assert not result.reliable and result.spans == [] and result.restored == FOREIGN
    d = json.loads(render_json(result, file="de.txt"))
    assert d["spin_probability"] is None and d["verdict"] == NOT_ENGLISH and d["file"] == "de.txt"
    assert "spin probability: n/a" in result.to_text(source="de.txt")
    page = result.to_html(source="de.txt")
    assert "spin probability n/a" in page and "cannot judge" in page


def test_empty_text_scores_zero(engine):
    result = engine.check("  \n ")
    assert result.spin_probability == 0.0 and result.verdict == NO_TEXT
    assert "spin probability: 0.00" in result.to_text()


# ---- renderers as methods ------------------------------------------------------------------
def test_check_result_renders_itself(engine):
    result = engine.check(SPUN)
    assert result.to_text(source="budget.txt") == render_text(result, "budget.txt", SPUN)
    assert result.to_html(source="budget.txt") == render_html(result, "budget.txt", SPUN,
                                                              thresholds=detect.DEFAULT_THRESHOLDS)
    text = result.to_text(source="budget.txt")
    assert text.startswith("unspin check: budget.txt\n") and "[mentioned -> said" in text
    page = result.to_html()
    assert page.startswith("<!doctype html>")
    assert '<span class="us-orig">said</span><span class="us-obs">mentioned</span>' in page


def test_an_html_result_renders_its_reduced_text(engine):
    result = engine.check(PAGE)
    report = result.to_text(source="page.html")
    assert "[mentioned -> said" in report and "<article>" not in report
    assert result.to_html(source="page.html") == render_html(result, "page.html", result.text,
                                                             thresholds=detect.DEFAULT_THRESHOLDS)


def test_render_json_lets_the_caller_name_the_input_format():
    result = CheckResult(0.25, "possibly spun", [], "Text.", text="Text.")
    d = json.loads(render_json(result, file="page.html", input_format="html"))
    assert list(d)[:3] == ["file", "input_format", "spin_probability"] and d["input_format"] == "html"


def test_match_renders_itself():
    m = Match("doc-7", 0.8, 0.75, [("same", "the minister", "the minister"), ("sub_channel", "mentioned", "said"),
                                    ("ins", "briefly", ""), ("same", "the plan", "the plan")])
    assert m.to_text() == render_alignment_text(m)
    assert m.to_text(width=60, changes_only=True) == render_alignment_text(m, width=60, changes_only=True)
    assert "~ mentioned" in m.to_text() and "the minister" not in m.to_text(changes_only=True)
    assert m.to_html(title="t") == render_alignment_html([m], title="t")
    assert "<span class='sub_channel'>mentioned</span>" in m.to_html()


# ---- pipe ----------------------------------------------------------------------------------
def _dicts(results):
    return [r.to_dict() for r in results]


def test_pipe_yields_results_in_input_order(engine):
    expected = _dicts(engine.check(t) for t in STREAM)
    results = engine.pipe(iter(STREAM))
    assert not isinstance(results, list)  # a stream, like spaCy's nlp.pipe
    assert _dicts(results) == expected
    assert [r.input_format for r in engine.pipe(STREAM)][-1] == "html"


def test_pipe_with_two_processes_matches_one(engine):
    expected = _dicts(engine.pipe(STREAM))
    assert _dicts(engine.pipe(STREAM, n_process=2, batch_size=1)) == expected
    assert _dicts(engine.pipe(iter(STREAM * 3), n_process=2, batch_size=4)) == expected * 3
    assert list(engine.pipe([], n_process=2)) == []


def test_pipe_passes_its_options_to_check(engine):
    strict = list(engine.pipe([SPUN, PAGE], n_process=2, min_confidence=1.01, html=False))
    assert strict[0].restored == SPUN  # no suggestion is that confident
    assert strict[1].input_format == "text"


def test_pipe_workers_can_unpickle_the_engine(engine, monkeypatch):
    """Where workers do not fork, each one gets the engine pickled: KenLM travels by its file."""
    again = pickle.loads(pickle.dumps(engine))
    assert again.lm.path == engine.lm.path and again.lm is not engine.lm
    assert _dicts(again.pipe(STREAM)) == _dicts(engine.pipe(STREAM))
    import multiprocessing

    monkeypatch.setattr(detect, "_pool_context", lambda: multiprocessing.get_context("spawn"))
    assert _dicts(engine.pipe(STREAM[:3], n_process=2)) == _dicts(engine.pipe(STREAM[:3]))


def test_pipe_refuses_bad_sizes(engine):
    with pytest.raises(ValueError):
        list(engine.pipe([SPUN], n_process=0))
    with pytest.raises(ValueError):
        list(engine.pipe([SPUN], batch_size=0))


def test_a_change_is_suspect_when_its_words_read_substituted_or_its_suggestion_is_confident(tiny_lm, tiny_channel):
    from unspin.logistic import logit

    # Every change at confidence 0.3 (Platt scaling without slope), no word flagged (no token model).
    unsure = replace(Calibration.uncalibrated(), span_a=0.0, span_b=logit(0.3))
    engine = Engine(tiny_lm, tiny_channel, unsure, DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6)))
    assert engine.calibration.flag_threshold > 0.0
    for min_confidence, suspect in ((0.5, False), (0.2, True)):
        result = engine.check(SPUN, min_confidence)
        changes = [s for s in result.spans if s.suggestion is not None]
        assert changes and all(s.confidence == pytest.approx(0.3) for s in changes)
        assert all(s.evidence["p_spun"] < engine.calibration.flag_threshold for s in changes)
        # Weak guesses on words that read as genuine are kept, not called suspicious, not applied.
        assert all(s.suspect is suspect for s in changes)
        assert (result.restored != SPUN) is suspect
        assert len(result.suspicious_spans) == (len(changes) if suspect else 0)
