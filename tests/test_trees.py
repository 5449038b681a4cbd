"""Boosted trees (unspin.trees): scikit-learn's model exported and evaluated without it, stored in the
calibration, and the shipped change-confidence model's promises (confidence rises with its evidence)."""
import dataclasses
import random

import numpy as np
import pytest

from unspin.build.calibrate import SPAN_TREES_RISING, _boosted_trees
from unspin.detect import DEFAULT_CALIBRATION_PATH, SPAN_FEATURES, Calibration
from unspin.trees import BoostedTrees


def _xor_rows(n=1500, seed=3):
    # A label no single feature explains: a logistic model over these features cannot fit it.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int)
    return [dict(a=float(r[0]), b=float(r[1]), noise=float(r[2])) for r in X], y


def test_exported_trees_give_scikit_learns_probabilities_and_learn_an_interaction():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows, y = _xor_rows()
    model = _boosted_trees(("a", "b", "noise"), rows, y)
    X = np.array([[r["a"], r["b"], r["noise"]] for r in rows])
    clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=31,
                                         early_stopping=False, random_state=0).fit(X, y)
    assert np.allclose(model.probabilities(rows), clf.predict_proba(X)[:, 1], atol=1e-6)
    probs = model.probabilities([{"a": 1.0, "b": 1.0, "noise": 0.0}, {"a": 1.0, "b": -1.0, "noise": 0.0},
                                 {"a": -1.0, "b": -1.0, "noise": 0.0}])
    assert probs[0] < 0.2 and probs[1] > 0.8 and probs[2] < 0.2


def test_trees_read_back_and_refuse_other_features_or_broken_tables():
    rows, y = _xor_rows(400)
    model = _boosted_trees(("a", "b", "noise"), rows, y)
    again = BoostedTrees.from_dict(model.to_dict(), expected=("a", "b", "noise"))
    assert again == model and again.probabilities(rows[:5]) == model.probabilities(rows[:5])
    with pytest.raises(ValueError, match="differ from the code's"):
        BoostedTrees.from_dict(model.to_dict(), expected=("a", "b"))
    broken = dict(model.to_dict(), left=[len(model.feature) + 5] * len(model.feature))
    with pytest.raises(ValueError, match="outside the node table"):
        BoostedTrees.from_dict(broken)
    with pytest.raises(ValueError, match="cycle"):  # node 1 leads back to the root
        BoostedTrees(("x",), 0.0, (0, 0, -1), (0.0, 0.0, 0.0), (1, 0, -1), (2, 2, -1), (0.0, 0.0, 1.0), (0,))
    with pytest.raises(ValueError, match="not a boosted tree model"):
        BoostedTrees.from_dict({"features": ["a"]})
    with pytest.raises(KeyError):
        model.probability({"a": 1.0})  # a feature vector without "b" and "noise"


def test_a_calibration_with_a_tree_change_model_round_trips():
    rng = random.Random(5)
    rows = [{name: rng.uniform(-2, 2) for name in SPAN_FEATURES} for _ in range(600)]
    y = [int(r["posterior_logit"] + r["lm_gain"] > 0) for r in rows]
    cal = dataclasses.replace(Calibration.uncalibrated(), span=_boosted_trees(SPAN_FEATURES, rows, y))
    again = Calibration.from_dict(cal.to_dict())
    assert isinstance(again.span, BoostedTrees)
    assert again.span_confidences([0.5] * 3, rows[:3]) == cal.span_confidences([0.5] * 3, rows[:3])
    assert cal.span_confidence(0.5, rows[0]) == cal.span_confidences([0.5], rows[:1])[0]


def test_shipped_change_confidence_never_falls_as_its_rising_evidence_grows():
    span = Calibration.load(DEFAULT_CALIBRATION_PATH).span
    assert isinstance(span, BoostedTrees) and span.features == SPAN_FEATURES
    rng = random.Random(11)
    # Plausible changes: the ranges the decoder and the document give these features.
    ranges = {"posterior_logit": (-4, 8), "lm_gain": (-3, 6), "channel": (-3, 1), "n_sources": (0, 4),
              "cosine": (0, 1), "zipf_gain": (-2, 2), "token_p": (0, 1), "length_change": (0, 2),
              "glove_only": (0, 1), "doc_logit": (-8, 12), "original_elsewhere": (0, 1.4),
              "neighbor_token_p": (0, 1), "n_alternatives": (0, 4),
              "alternative_margin": (-1, 1), "agreeing_changes": (0, 1.4), "other_readings": (0, 1.4),
              "observed_repeats": (0, 1.4), "original_expected": (0, 2)}
    base = [{n: rng.uniform(*ranges[n]) for n in SPAN_FEATURES} for _ in range(300)]
    low = span.probabilities(base)
    for name in SPAN_TREES_RISING:
        high = span.probabilities([dict(r, **{name: r[name] + 1.0}) for r in base])
        assert all(h >= l - 1e-12 for h, l in zip(high, low)), name
    # ... and other changes reading the same words the same way count in its favour (a spinner
    # replaces a term alike throughout a page).
    agreed = span.probabilities([dict(r, agreeing_changes=1.0986, other_readings=0.0) for r in base])
    alone = span.probabilities([dict(r, agreeing_changes=0.0, other_readings=0.0) for r in base])
    assert sum(agreed) > sum(alone)
