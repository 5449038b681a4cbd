"""The decoder and engine on a tiny hand-written language model and channel."""
from dataclasses import replace

import pytest

from unspin.decode import ChannelWeights, Decoder, DecoderConfig
from unspin.detect import SPUN_PASS_MAX_CANDIDATES, Calibration, Engine, apply_spans
from unspin.text import sentences

# `tiny_lm` and `tiny_channel` come from conftest.py.


def decode(lm, channel, text):
    dec = Decoder(lm, channel, DecoderConfig())
    return [c for toks in sentences(text) for c in dec.decode(toks).changes]


def test_restores_single_substitutions(tiny_lm, tiny_channel):
    changes = decode(tiny_lm, tiny_channel, "The minister mentioned the plan was ready.")
    assert [(c.observed, c.original) for c in changes] == [("mentioned", "said")]
    assert changes[0].posterior > 0.5


def test_restores_a_sentence_with_several_substitutions(tiny_lm, tiny_channel):
    text = "The infantrymen returned from the entrance traces."
    changes = decode(tiny_lm, tiny_channel, text)
    assert {(c.observed, c.original) for c in changes} == {
        ("infantrymen", "soldiers"), ("entrance", "front"), ("traces", "lines")}
    for c in changes:
        assert text[c.start:c.end] == c.observed


def test_keeps_case_of_first_letter(tiny_lm, tiny_channel):
    changes = decode(tiny_lm, tiny_channel, "Extra troops arrived at the front lines on monday.")
    assert [(c.observed, c.original) for c in changes] == [("Extra", "More")]


def test_genuine_text_is_left_alone(tiny_lm, tiny_channel):
    assert decode(tiny_lm, tiny_channel, "The police said the road was closed.") == []


def test_engine_check_and_restore(tiny_lm, tiny_channel):
    # Three of ten words spun: a prior for heavy spinning, as the tiny LM's scale is not the real one's.
    heavy = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6))
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), heavy)
    text = "The minister mentioned the scheme would price extra than expected."
    result = engine.check(text)
    assert result.restored == "The minister said the plan would cost more than expected."
    for span in result.spans:
        assert text[span.start:span.end] == span.text
        assert 0.0 <= span.confidence <= 1.0
    assert 0.0 <= result.spin_probability <= 1.0
    assert engine.restore(text, min_confidence=1.01).text == text


def test_engine_empty_and_foreign_text(tiny_lm, tiny_channel):
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated())
    empty = engine.check("   \n ")
    assert empty.n_words == 0 and empty.spans == [] and not empty.reliable
    foreign = engine.check("Der Minister sagte, dass der Plan mehr kosten würde als erwartet.")
    assert foreign.language == "non-English" and not foreign.reliable and foreign.spans == []
    assert foreign.spin_probability is None and foreign.to_dict()["spin_probability"] is None
    assert empty.spin_probability == 0.0


def test_apply_spans_skips_unconfident():
    from unspin.detect import Span
    text = "a b c"
    spans = [Span(0, 1, "a", "x", 0.9), Span(4, 5, "c", "z", 0.1)]
    assert apply_spans(text, spans, 0.5) == "x b c"


def test_flagged_spans_merge_runs_and_skip_decoded_changes(tiny_lm, tiny_channel):
    from unspin.detect import flagged_spans

    text = "The minister mentioned odd weird plans."
    toks = next(sentences(text))
    heavy = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6))
    decoding = Decoder(tiny_lm, tiny_channel, heavy).decode(toks)
    assert [c.observed for c in decoding.changes] == ["mentioned"]
    probs = [0.0, 0.1, 0.9, 0.8, 0.7, 0.2, 0.0]  # The minister mentioned odd weird plans .
    spans = flagged_spans(text, decoding, probs, threshold=0.5)
    assert [(s.text, s.suggestion) for s in spans] == [("odd weird", None)]
    assert spans[0].confidence == 0.8 and text[spans[0].start:spans[0].end] == "odd weird"


def test_decoder_reports_token_evidence(tiny_lm, tiny_channel):
    toks = next(sentences("The minister mentioned the plan."))
    decoding = Decoder(tiny_lm, tiny_channel).decode(toks)
    assert len(decoding.evidence) == len(toks)
    by_word = {t.text: ev for t, ev in zip(toks, decoding.evidence)}
    assert by_word["mentioned"].suspicion > 0.5 and by_word["mentioned"].n_candidates > 0
    assert by_word["The"].n_candidates == 0 and by_word["The"].suspicion == 0.0
    assert all(ev.logprob <= 0 for ev in decoding.evidence)


def test_spun_pass_decodes_again_with_a_looser_prior_only_when_the_text_reads_as_spun(tiny_lm, tiny_channel):
    strict = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-6.0))
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), strict, spun_prior_boost=4.0)
    token_lists = list(sentences("The minister mentioned the scheme would price extra than expected."))
    first = engine.decode_document(token_lists)
    assert engine.spun_pass(token_lists, first, 0.2) is first  # reads as genuine: one pass
    again = engine.spun_pass(token_lists, first, 0.9)
    n_first = sum(len(d.changes) for d in first)
    n_again = sum(len(d.changes) for d in again)
    assert n_again > n_first
    assert engine.spun_decoder.config.weights.log_p_sub == -2.0
    single = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), strict, spun_prior_boost=None)
    assert single.spun_decoder is None and single.spun_pass(token_lists, first, 0.99) is first



def test_spun_pass_searches_more_candidates_than_the_first_pass(tiny_lm, tiny_channel):
    # "said" has two candidates in the tiny channel (mentioned, stated); a first pass capped at one
    # scores one of them, the spun pass both (its cap is SPUN_PASS_MAX_CANDIDATES).
    capped = DecoderConfig(max_candidates=1)
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), capped, spun_prior_boost=2.0)
    token_lists = list(sentences("She said the report was late."))
    first = engine.decode_document(token_lists)
    again = engine.spun_pass(token_lists, first, 0.9)
    said = [t.text for t in token_lists[0]].index("said")
    assert first[0].evidence[said].n_candidates == 1
    assert again[0].evidence[said].n_candidates == 2
    assert engine.spun_decoder.config.max_candidates == SPUN_PASS_MAX_CANDIDATES

def test_cached_scores_give_the_models_own_scores(tiny_lm):
    from unspin.lm import CachedScores

    cached = CachedScores(tiny_lm, maxsize=4)
    for text in ("the minister said", "the police said the road was closed", "the minister said"):
        assert cached.sentence_score(text) == tiny_lm.sentence_score(text)
        assert cached.sentence_score(text, bos=False, eos=False) == tiny_lm.sentence_score(text, bos=False, eos=False)
    assert cached.sentence_score.cache_info().hits >= 2
    assert cached.contains("minister") and not cached.contains("xqzv")


def test_spun_pass_shares_the_first_pass_ranking_of_candidates(tiny_lm, tiny_channel):
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), DecoderConfig(max_candidates=1),
                    spun_prior_boost=2.0)
    first = engine.decoder.scored_candidates(("said",))
    spun = engine.spun_decoder.scored_candidates(("said",))
    assert len(first) == 1 and len(spun) == 2 and spun[0][0] == first[0][0]
    assert spun[0][1] == pytest.approx(first[0][1] + 2.0)  # the looser prior: one constant shift
    stricter = DecoderConfig(weights=replace(ChannelWeights(), cosine=0.0))
    with pytest.raises(ValueError, match="every channel weight but the substitution prior"):
        Decoder(engine.decoder.lm, tiny_channel, stricter, ranking=engine.decoder)


REFINE_TEXTS = ["The infantrymen stated the entrance traces were quiet.",
                "The infantrymen mentioned extra infantrymen would arrive at the entrance traces.",
                "The minister mentioned the scheme would price extra than expected.",
                "Officials stated the storm would reach the coast on monday."]


def _changes_not_at_their_best(lm, channel, config):
    """Changes of the decoded REFINE_TEXTS that another reading of their span beats, the rest of
    the sentence as decoded."""
    dec = Decoder(lm, channel, config)
    out = []
    for text in REFINE_TEXTS:
        for toks in sentences(text):
            for c in dec.decode(toks).changes:
                if any(p > c.posterior for _, p in c.alternatives):
                    out.append((c.observed, c.original, c.alternatives[0]))
    return out


def test_refined_changes_are_the_best_reading_of_their_span(tiny_lm, tiny_channel):
    # A beam of one keeps the reading that looks best so far, not the one the words after it prefer.
    narrow = DecoderConfig(beam=1, prefilter_top=6, refine_sweeps=0)
    assert _changes_not_at_their_best(tiny_lm, tiny_channel, narrow)   # the beam alone errs here
    assert _changes_not_at_their_best(tiny_lm, tiny_channel, replace(narrow, refine_sweeps=3)) == []
