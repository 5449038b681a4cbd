"""The neural path inside the engine: rescored changes get the neural confidence model, and the
command line says how to enable the scorer when it is missing."""

import pytest

from unspin import neural
from unspin.cli import main
from unspin.detect import NEURAL_SPAN_FEATURES, Calibration, Engine, load_neural_span_model
from unspin.logistic import LogisticModel
from unspin.rescore import NeuralRescorer, RescoreWeights

TEXT = "The minister mentioned the scheme would cost more than expected."


class FakeScorer:
    """Prefers the given words; everything else scores 0."""

    def __init__(self, bonus):
        self.bonus = bonus

    def score_alternatives(self, left, alternatives, right=""):
        return [self.bonus.get(a.lower(), 0.0) for a in alternatives]


def _confidence_model(bias: float) -> LogisticModel:
    """A model that ignores its features: every rescored change gets sigmoid(bias)."""
    zero = LogisticModel.zero(NEURAL_SPAN_FEATURES)
    return LogisticModel(zero.features, [0.0] * len(zero.features), bias, [0.0] * len(zero.features),
                         [1.0] * len(zero.features))


def test_rescored_changes_take_the_neural_confidence(tiny_lm, tiny_channel):
    rescorer = NeuralRescorer(FakeScorer({"said": 6.0, "plan": 6.0}), RescoreWeights(min_suspicion=1.1))
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), rescorer=rescorer,
                    neural_span=_confidence_model(2.0))
    result = engine.check(TEXT)
    rescored = [s for s in result.spans if s.evidence.get("scorer") == "neural"]
    assert {s.suggestion for s in rescored} == {"said", "plan"}
    assert all(s.confidence == pytest.approx(0.8808, abs=1e-3) for s in rescored)
    assert "said" in result.restored and "plan" in result.restored
    low = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), rescorer=rescorer,
                 neural_span=_confidence_model(-2.0)).check(TEXT)
    assert low.restored == TEXT  # unconfident suggestions are shown, never applied


def test_a_rescorer_without_its_confidence_model_is_refused(tiny_lm, tiny_channel):
    with pytest.raises(ValueError, match="confidence model"):
        Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), rescorer=NeuralRescorer(FakeScorer({})))


def test_the_shipped_neural_confidence_model_matches_the_code():
    assert load_neural_span_model().features == NEURAL_SPAN_FEATURES


def test_scorer_neural_without_the_extra_says_how_to_enable_it(tmp_path, models, capsys, monkeypatch):
    def unavailable(*args, **kwargs):
        raise neural.NeuralUnavailable("the neural scorer needs torch: pip install 'unspin[neural]'")

    monkeypatch.setattr(neural.NeuralScorer, "load", classmethod(lambda cls, *a, **k: unavailable()))
    f = tmp_path / "in.txt"
    f.write_text(TEXT, encoding="utf-8")
    assert main(["check", str(f), "--scorer", "neural", *models]) == 2
    err = capsys.readouterr().err
    assert "unspin[neural]" in err and "Traceback" not in err


def test_unknown_scorer_is_a_usage_error(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text(TEXT, encoding="utf-8")
    assert main(["check", str(f), "--scorer", "gpt", *models]) == 2
    assert "invalid choice" in capsys.readouterr().err
