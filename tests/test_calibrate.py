"""Calibration: fitting, monotonicity, persistence, and span labels."""
import random

from unspin.build.calibrate import change_correct, spin_truth
from unspin.decode import Change
from unspin.detect import FEATURES, Calibration
from unspin.build.spinner import Change as SpinChange


def _fit(rows):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[r[0][f] for f in FEATURES] for r in rows])
    y = np.array([r[1] for r in rows])
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1
    m = LogisticRegression().fit((X - mean) / scale, y)
    return Calibration(list(m.coef_[0]), float(m.intercept_[0]), list(mean), list(scale))


def _features(changes):
    base = {f: 0.0 for f in FEATURES}
    base.update(changes_per_100=changes, mass_per_100=changes * 1.1, gain_per_word=changes / 50)
    return base


def test_doc_probability_is_monotone_and_bounded(tmp_path):
    rng = random.Random(0)
    rows = [(_features(rng.uniform(0, 4)), 0) for _ in range(60)] + \
           [(_features(rng.uniform(3, 20)), 1) for _ in range(60)]
    cal = _fit(rows)
    probs = [cal.doc_probability(_features(x)) for x in (0, 2, 5, 10, 30)]
    assert probs == sorted(probs)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert probs[0] < 0.2 and probs[-1] > 0.9
    path = tmp_path / "cal.json"
    cal.save(path)
    again = Calibration.load(path)
    assert again.doc_probability(_features(7)) == cal.doc_probability(_features(7))


def test_span_confidence_platt_scaling():
    cal = Calibration.uncalibrated()
    assert cal.span_confidence(0.5) == 0.5  # identity scaling by default
    sharp = Calibration(**{**cal.__dict__, "span_a": 2.0, "span_b": -1.0})
    assert sharp.span_confidence(0.9) > sharp.span_confidence(0.6)
    assert 0.0 < sharp.span_confidence(1.0) < 1.0 and 0.0 < sharp.span_confidence(0.0) < 1.0


def _change(start, end, original, posterior):
    return Change(first=0, last=1, start=start, end=end, observed="x", original=original, posterior=posterior,
                  p_identity=1 - posterior, lm_gain=1.0, channel_score=-1.0, sources=("wordnet",), cosine=0.5,
                  zipf_gain=1.0, alternatives=())


def test_changes_are_right_only_where_the_spinner_had_that_original():
    truth = spin_truth([SpinChange(4, 13, "Said", "mentioned"), SpinChange(20, 25, "large", "giant")])
    assert change_correct(_change(4, 13, "said", 0.9), truth)
    assert not change_correct(_change(20, 25, "big", 0.7), truth)
    assert not change_correct(_change(30, 35, "big", 0.7), truth)


def test_span_confidence_model_uses_features():
    from unspin.detect import SPAN_FEATURES, Engine

    n = len(SPAN_FEATURES)
    cal = Calibration(**{**Calibration.uncalibrated().__dict__, "span_coef": [1.0] + [0.0] * (n - 1),
                         "span_intercept": 0.0, "span_mean": [0.0] * n, "span_scale": [1.0] * n})
    strong = Engine.span_features(_change(0, 1, "said", 0.95), [0.9])
    weak = Engine.span_features(_change(0, 1, "said", 0.30), [0.9])
    assert cal.span_confidence(0.95, strong) > 0.9 > 0.5 > cal.span_confidence(0.30, weak)
