"""unspin.rescore: the neural rescorer's decisions, with a fake scorer on the tiny LM and channel."""
import dataclasses

import pytest

from unspin.decode import Change, Decoder
from unspin.rescore import NEURAL, NeuralRescorer, RescoredChange, RescoreWeights, _left_anchor, apply_changes
from unspin.text import sentences

# Written for these tests. Sentence 2 decodes (tiny LM + channel) to mentioned->said and
# scheme->plan; "extra" stays but is suspicious (its candidate "more").
TEXT = ("Rain fell over the hills all night. The minister mentioned the scheme would price extra "
        "than expected. Nobody argued.")


class FakeScorer:
    """Deterministic stand-in for NeuralScorer: each alternative scores the bonus of its
    lowercased text (0 if none); every call is recorded."""

    def __init__(self, bonus=None):
        self.bonus = {k.lower(): v for k, v in (bonus or {}).items()}
        self.calls = []

    def score_alternatives(self, left, alternatives, right=""):
        self.calls.append((left, list(alternatives), right))
        return [self.bonus.get(a.lower(), 0.0) for a in alternatives]


@pytest.fixture(scope="module")
def decoder(tiny_lm, tiny_channel):
    return Decoder(tiny_lm, tiny_channel)


@pytest.fixture(scope="module")
def decoded(decoder):
    """The decoding of TEXT's second sentence."""
    token_lists = list(sentences(TEXT))
    assert len(token_lists) == 3
    d = decoder.decode(token_lists[1])
    assert {(c.observed, c.original) for c in d.changes} == {("mentioned", "said"), ("scheme", "plan")}
    return d


def _by_observed(decoding):
    return {c.observed: c for c in decoding.changes}


def test_change_the_scorer_prefers_is_kept(decoder, decoded):
    fake = FakeScorer({"said": 5.0, "plan": 5.0})
    out = NeuralRescorer(fake, RescoreWeights(min_suspicion=1.1)).rescore(TEXT, decoded, decoder)
    got = _by_observed(out)
    assert set(got) == {"mentioned", "scheme"}
    said = got["mentioned"]
    assert isinstance(said, RescoredChange) and isinstance(said, Change)
    assert said.original == "said" and said.decided_by == NEURAL and not said.changed_choice
    assert said.decoder_original == "said"
    assert said.posterior > 0.99 and said.p_identity < 0.01
    # The identity is among the alternatives, with the rescorer's posteriors.
    assert dict(said.alternatives)["mentioned"] == pytest.approx(said.p_identity)
    assert said.posterior + sum(p for _, p in said.alternatives) == pytest.approx(1.0)
    # One scorer call per span; the identity scored with its surface form.
    assert len(fake.calls) == 2
    assert all("mentioned" in alts or "scheme" in alts for _, alts, _ in fake.calls)


def test_change_where_the_identity_wins_is_dropped(decoder, decoded):
    fake = FakeScorer({"said": 3.0, "scheme": 5.0})
    out = NeuralRescorer(fake, RescoreWeights(min_suspicion=1.1)).rescore(TEXT, decoded, decoder)
    assert [(c.observed, c.original) for c in out.changes] == [("mentioned", "said")]
    # The input decoding is left as it was.
    assert len(decoded.changes) == 2


def test_neutral_scorer_keeps_the_decoder_posteriors(decoder, decoded):
    out = NeuralRescorer(FakeScorer(), RescoreWeights(decoder=1.0, channel=0.0, lm=0.0, min_suspicion=1.1)).rescore(
        TEXT, decoded, decoder)
    for old, new in zip(decoded.changes, out.changes):
        assert new.original == old.original
        assert new.posterior == pytest.approx(old.posterior, rel=1e-6)
        assert new.p_identity == pytest.approx(old.p_identity, rel=1e-6)


def test_scorer_prefers_another_candidate(decoder, decoded):
    # Give the decoder's change a second candidate ("stated", as if the lattice had kept it).
    change = _by_observed(decoded)["mentioned"]
    widened = dataclasses.replace(change, alternatives=change.alternatives + (("stated", 0.0004),))
    d = dataclasses.replace(decoded, changes=[widened if c is change else c for c in decoded.changes])
    fake = FakeScorer({"stated": 8.0, "plan": 2.0})
    out = _by_observed(NeuralRescorer(fake, RescoreWeights(min_suspicion=1.1)).rescore(TEXT, d, decoder))
    new = out["mentioned"]
    assert new.original == "stated" and new.changed_choice and new.decoder_original == "said"
    assert {t for t, _ in new.alternatives} == {"said", "mentioned"}
    assert new.decoder_posterior == pytest.approx(0.0004)


def test_suspicious_undecided_word_gains_a_change(decoder, decoded):
    i = next(k for k, t in enumerate(decoded.tokens) if t.text == "extra")
    assert decoded.evidence[i].suspicion >= 0.3
    assert "more" in decoder.candidate_originals(("extra",))
    fake = FakeScorer({"said": 2.0, "plan": 2.0, "more": 6.0})
    rescorer = NeuralRescorer(fake, RescoreWeights(min_suspicion=0.3))
    out = _by_observed(rescorer.rescore(TEXT, decoded, decoder))
    added = out["extra"]
    assert added.original == "more" and added.decoder_original is None and added.changed_choice
    assert (added.first, added.last) == (i, i + 1)
    assert added.posterior > 0.5 and added.channel_score < 0
    assert "extra" in dict(added.alternatives)
    # Without the scorer's support the identity keeps it.
    plain = NeuralRescorer(FakeScorer({"said": 2.0, "plan": 2.0}), RescoreWeights(min_suspicion=0.3))
    assert "extra" not in _by_observed(plain.rescore(TEXT, decoded, decoder))


def test_offsets_and_context(decoder, decoded):
    fake = FakeScorer({"said": 3.0, "plan": 3.0, "more": 6.0})
    out = NeuralRescorer(fake, RescoreWeights(min_suspicion=0.3)).rescore(TEXT, decoded, decoder)
    assert len(out.changes) == 3
    for c in out.changes:
        assert TEXT[c.start:c.end] == c.observed
        assert out.tokens[c.first].start == c.start and out.tokens[c.last - 1].end == c.end
    assert apply_changes(TEXT, out.changes) == (
        "Rain fell over the hills all night. The minister said the plan would price more than expected. "
        "Nobody argued.")
    # The left context reaches back into the previous sentence; the right runs past the sentence.
    left, alts, right = next(call for call in fake.calls if "mentioned" in call[1])
    assert left.endswith("night. The minister") and left.startswith("Rain")
    assert right.startswith("the scheme would") and right.endswith("Nobody argued.")
    assert alts[0] == "mentioned" and "said" in alts


def test_case_is_carried_to_the_candidates(decoder):
    text = "Mentioned the minister, the scheme was ready."
    toks = next(sentences(text))
    d = decoder.decode(toks)
    fake = FakeScorer({"said": 4.0, "plan": 4.0})
    # Every word with candidates is scored (decoded or not): the sentence's first word among them.
    out = NeuralRescorer(fake, RescoreWeights(min_suspicion=0.0)).rescore(text, d, decoder)
    surfaces = {a for _, alts, _ in fake.calls for a in alts}
    assert {"Mentioned", "Said"} <= surfaces and "said" not in surfaces
    first = next(c for c in out.changes if c.first == 0)
    assert first.original == "Said" and text[first.start:first.end] == "Mentioned"


def test_left_anchor_is_shared_by_a_sentence():
    text = "One short line. " + "Another sentence follows here. " + "The last one has the spans."
    start = text.index("The last")
    anchor = _left_anchor(text, start, min_chars=10, max_chars=400)
    assert text[anchor:].startswith("Another sentence")
    assert _left_anchor(text, start, min_chars=1000, max_chars=2000) == 0


class ProposingScorer(FakeScorer):
    """FakeScorer that also ranks words for a slot (`next_word_logprobs`): by the same bonuses."""

    def __init__(self, bonus=None):
        super().__init__(bonus)
        self.ranked = []

    def next_word_logprobs(self, left, words):
        self.ranked.append(list(words))
        return [self.bonus.get(w.lower(), -5.0) for w in words]


def test_proposals_are_off_by_default(decoder, decoded):
    fake = ProposingScorer({"stated": 9.0})
    NeuralRescorer(fake, RescoreWeights(min_suspicion=1.1)).rescore(TEXT, decoded, decoder)
    assert fake.ranked == []
    assert all("stated" not in [a.lower() for a in alts] for _, alts, _ in fake.calls)


def test_a_proposed_relative_of_a_relative_can_win_the_span(decoder, decoded):
    # The tiny channel lists only "said" for "mentioned"; "stated" is a relative of "said".
    fake = ProposingScorer({"stated": 9.0})
    rescorer = NeuralRescorer(fake, RescoreWeights(min_suspicion=1.1, proposals=2))
    tokens = decoded.tokens
    i = [t.text for t in tokens].index("mentioned")
    assert rescorer.proposals(TEXT, tokens, i, decoder, ["said"]) == ["stated"]
    assert rescorer.proposals(TEXT, tokens, i, decoder, ["said", "stated"]) == []
    out = _by_observed(rescorer.rescore(TEXT, decoded, decoder))
    stated = out["mentioned"]
    assert stated.original == "stated" and stated.changed_choice and stated.decoder_original == "said"
    # An unlisted substitution: the channel score of one, no thesaurus source.
    assert stated.channel_score == decoder.config.weights.log_p_sub and stated.sources == ()
