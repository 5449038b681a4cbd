"""Calibration: fitting, monotonicity, persistence, and span labels."""
import dataclasses
import json
import math
import random

import pytest

from unspin.build.calibrate import change_correct, spin_truth
from unspin.decode import Change
from unspin.detect import DEFAULT_CALIBRATION_PATH, FEATURES, Calibration, IncompatibleCalibration
from unspin.build.spinner import Change as SpinChange, SpinResult
from unspin.lm import ModelMissing
from unspin.logistic import LogisticModel


class UpperCaseSpinner:
    """A calibration spinner that swaps nothing (it upper-cases the text) and records whether each
    text was to be spun treating every occurrence of a term alike."""

    def __init__(self):
        self.consistent = []

    def spin_to_fraction(self, text, fraction, seed=None, consistent=False):
        self.consistent.append(consistent)
        return SpinResult(text.upper(), text, [])


def _fit(rows):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.array([[r[0][f] for f in FEATURES] for r in rows])
    y = np.array([r[1] for r in rows])
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1
    m = LogisticRegression().fit((X - mean) / scale, y)
    return Calibration(LogisticModel(FEATURES, m.coef_[0], float(m.intercept_[0]), mean, scale))


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
    sharp = dataclasses.replace(cal, span_a=2.0, span_b=-1.0)
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
    cal = dataclasses.replace(Calibration.uncalibrated(), span=LogisticModel(
        SPAN_FEATURES, [1.0] + [0.0] * (n - 1), 0.0, [0.0] * n, [1.0] * n))
    strong = Engine.span_features(_change(0, 1, "said", 0.95), [0.9], 0.99)
    weak = Engine.span_features(_change(0, 1, "said", 0.30), [0.9], 0.99)
    assert cal.span_confidence(0.95, strong) > 0.9 > 0.5 > cal.span_confidence(0.30, weak)
    # ... but never above the document's P(spun): a change is right only in a spun text.
    in_doubt = Engine.span_features(_change(0, 1, "said", 0.95), [0.9], 0.4)
    assert cal.span_confidence(0.95, in_doubt) == pytest.approx(0.4)


def test_span_confidence_can_follow_the_documents_spin_probability():
    from unspin.detect import SPAN_FEATURES, Engine

    n = len(SPAN_FEATURES)
    coef = [1.0 if name in ("posterior_logit", "doc_logit") else 0.0 for name in SPAN_FEATURES]
    cal = dataclasses.replace(Calibration.uncalibrated(), span=LogisticModel(SPAN_FEATURES, coef, 0.0,
                                                                             [0.0] * n, [1.0] * n))
    change = _change(0, 1, "said", 0.8)
    in_spun = cal.span_confidence(0.8, Engine.span_features(change, [0.9], 0.99))
    in_genuine = cal.span_confidence(0.8, Engine.span_features(change, [0.9], 0.01))
    assert in_spun > 0.8 > 0.1 > in_genuine


def test_flags_need_a_flag_model_to_use_the_document_and_skip_words_under_the_floor():
    from unspin.detect import FLAG_FEATURES, FLAG_FLOOR, TOKEN_FEATURES, TokenFeatures, flag_features
    from unspin.trees import BoostedTrees

    feats = TokenFeatures(*[0.0] * len(TOKEN_FEATURES))
    plain = Calibration.uncalibrated()
    assert plain.flag_probabilities([[feats, None]], [[0.6, 0.0]], 0.01) == [[0.6, 0.0]]
    assert plain.flag_probabilities([[feats]], [[0.6]], 0.99) == [[0.6]]
    # One stump on doc_logit: a word in a spun document is flagged, the same word in a genuine one not.
    doc = FLAG_FEATURES.index("doc_logit")
    stump = BoostedTrees(FLAG_FEATURES, 0.0, (doc, -1, -1), (0.0, 0.0, 0.0), (1, -1, -1), (2, -1, -1),
                         (0.0, -2.0, 2.0), (0,))
    cal = dataclasses.replace(plain, flag=stump, flag_threshold=0.4)
    (spun,), (genuine,) = cal.flag_probabilities([[feats]], [[0.6]], 0.99), cal.flag_probabilities([[feats]], [[0.6]], 0.01)
    assert spun[0] > 0.5 > genuine[0]
    # The trees read the same named evidence as `flag_features` (one sentence or two, same numbers).
    assert spun[0] == pytest.approx(stump.probability(flag_features(feats, 0.6, 0.99)))
    two = cal.flag_probabilities([[feats], [None, feats]], [[0.6], [0.0, 0.6]], 0.99)
    assert two == [[spun[0]], [0.0, spun[0]]]
    # Under the floor a word is never flagged, whatever the model says; punctuation neither.
    assert cal.flag_probabilities([[feats, None]], [[FLAG_FLOOR / 2, 0.9]], 0.99) == [[0.0, 0.0]]
    again = Calibration.from_dict(cal.to_dict())
    assert again.flag == stump and again.flag_threshold == 0.4


def test_shipped_calibration_carries_the_codes_feature_names():
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    cal = Calibration.load()
    for name in ("document", "token", "span", "flag"):
        assert data[name]["features"] == list(getattr(cal, name).features)
    assert cal.token is not None and cal.span is not None and cal.flag is not None


def _saved(tmp_path, data) -> str:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_load_refuses_other_feature_names(tmp_path):
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    renamed = json.loads(json.dumps(data))
    renamed["token"]["features"][0] = "suspicion"  # a feature the code no longer has
    expected = r"token model.*missing \['suspicion_logit'\].*unknown \['suspicion'\]"
    with pytest.raises(IncompatibleCalibration, match=expected):
        Calibration.load(_saved(tmp_path, renamed))
    swapped = json.loads(json.dumps(data))
    f = swapped["document"]["features"]
    f[0], f[1] = f[1], f[0]  # same names, other order: the coefficients would be misapplied
    with pytest.raises(ValueError, match="other order"):
        Calibration.load(_saved(tmp_path, swapped))
    shorter = json.loads(json.dumps(data))
    shorter["span"]["features"] = shorter["span"]["features"][:-1]  # the change model's trees
    with pytest.raises(ModelMissing, match="span model"):
        Calibration.load(_saved(tmp_path, shorter))
    shorter = json.loads(json.dumps(data))
    shorter["flag"]["features"] = shorter["flag"]["features"][:-1]  # the flag model's trees
    with pytest.raises(ModelMissing, match="flag model"):
        Calibration.load(_saved(tmp_path, shorter))
    # An older file's logistic flag model over two probabilities is refused, not misread.
    old_flag = json.loads(json.dumps(data))
    old_flag["flag"] = LogisticModel(("token_logit", "doc_logit"), (1.0, 1.0), 0.0, (0.0, 0.0), (1.0, 1.0)).to_dict()
    with pytest.raises(IncompatibleCalibration, match="flag model"):
        Calibration.load(_saved(tmp_path, old_flag))


def test_load_refuses_the_old_unnamed_format(tmp_path):
    old = {"coef": [0.0] * len(FEATURES), "intercept": 0.0, "mean": [0.0] * len(FEATURES),
           "scale": [1.0] * len(FEATURES), "span_a": 1.0, "span_b": 0.0}
    with pytest.raises(IncompatibleCalibration, match="refit it with `unspin calibrate`"):
        Calibration.load(_saved(tmp_path, old))


def test_calibration_round_trips_every_number(tmp_path):
    cal = Calibration.load()
    path = tmp_path / "again.json"
    cal.save(path)
    assert Calibration.load(path) == cal
    assert path.read_text(encoding="utf-8") == DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8")


# Hand-made calibration rows, written for these tests: three genuine sentences and two spun ones.
GENUINE_ROWS = ["The minister said the plan would cost more than expected.",
                "The police said the road was closed.", "The soldiers returned from the front lines."]
SPUN_ROWS = [("The minister mentioned the scheme would price extra than expected.",
              "The minister said the plan would cost more than expected.",
              [("mentioned", "said"), ("scheme", "plan"), ("price", "cost"), ("extra", "more")]),
             ("The infantrymen returned from the entrance traces.",
              "The soldiers returned from the front lines.",
              [("infantrymen", "soldiers"), ("entrance", "front"), ("traces", "lines")])]


def _hand_made_rows():
    from unspin.build.spinner import SpinResult

    rows = [(t, 0, None) for t in GENUINE_ROWS]
    for text, original, pairs in SPUN_ROWS:
        changes = [SpinChange(text.index(new), text.index(new) + len(new), old, new) for new, old in pairs]
        rows.append((text, 1, SpinResult(text, original, changes)))
    return rows


def test_fit_writes_named_models(tiny_lm, tiny_channel):
    """`fit` on a handful of hand-made rows gives the named format that `load` accepts."""
    from unspin.build.calibrate import fit
    from unspin.detect import SPAN_FEATURES, TOKEN_FEATURES, Engine

    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated())
    cal = fit(engine, _hand_made_rows(), "hand-made rows")
    assert cal.document.features == FEATURES and cal.token.features == TOKEN_FEATURES
    assert cal.span is None or cal.span.features == SPAN_FEATURES
    assert cal.flag is not None and 0.0 < cal.flag_threshold < 1.0
    assert "5 documents" in cal.trained_on


def test_paragraph_rows_and_a_prior_reach_the_document_model_only(tiny_lm, tiny_channel):
    import re

    from unspin.build.calibrate import SPUN_PRIORS, fit
    from unspin.logistic import logit
    from unspin.detect import Engine

    rows = _hand_made_rows()
    paragraphs = [("The council said the bridge would open in spring.", 0, None, 0), (*rows[3], 1),
                  (*rows[1], 2), (*rows[4], 3)]
    plain = fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), rows, "plain")
    more = fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), rows, "more",
               paragraph_rows=paragraphs, spun_prior=0.25)
    assert more.token.to_dict() == plain.token.to_dict()
    assert more.document.to_dict() != plain.document.to_dict()
    assert "9 texts (4 of them paragraphs" in more.trained_on and "0.25 of checked texts spun" in more.trained_on
    # "auto": a listed share chosen on the genuine paragraphs; only the intercept differs.
    auto = fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), rows, "auto",
               paragraph_rows=paragraphs, spun_prior="auto")
    chosen = float(re.search(r"stated for ([0-9.]+) of checked texts spun \(chosen", auto.trained_on).group(1))
    assert chosen in SPUN_PRIORS and auto.document.coef == more.document.coef
    assert auto.document.intercept - more.document.intercept == pytest.approx(logit(chosen) - logit(0.25))
    with pytest.raises(ValueError):
        fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), rows, "auto",
            paragraph_rows=[p for p in paragraphs if p[1] == 1], spun_prior="auto")


def test_restoration_models_can_learn_from_other_spins_of_the_same_articles(tiny_lm, tiny_channel):
    """`fit(..., restore_rows=...)`: the token and document models are those of the plain fit; the
    flag and change models learn from the other rows."""
    from unspin.build.calibrate import fit
    from unspin.build.spinner import SpinResult
    from unspin.detect import Engine

    def rows_of(spun):
        rows = [(t, 0, None) for t in ("The minister said the plan would cost more than expected.",
                                       "The police said the road was closed.",
                                       "The soldiers returned from the front lines.")]
        for text, original, pairs in spun:
            changes = [SpinChange(text.index(new), text.index(new) + len(new), old, new) for new, old in pairs]
            rows.append((text, 1, SpinResult(text, original, changes)))
        return rows

    plain = rows_of([("The minister mentioned the scheme would price extra than expected.",
                      "The minister said the plan would cost more than expected.",
                      [("mentioned", "said"), ("scheme", "plan"), ("price", "cost"), ("extra", "more")]),
                     ("The infantrymen returned from the entrance traces.",
                      "The soldiers returned from the front lines.",
                      [("infantrymen", "soldiers"), ("entrance", "front"), ("traces", "lines")])])
    swapped = rows_of([("The minister stated the plan would cost additional than expected.",
                        "The minister said the plan would cost more than expected.",
                        [("stated", "said"), ("additional", "more")]),
                       ("The troopers returned from the entrance lines.",
                        "The soldiers returned from the front lines.",
                        [("troopers", "soldiers"), ("entrance", "front")])])
    alone = fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), plain, "plain")
    split = fit(Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()), plain, "split", restore_rows=swapped)
    assert split.document.to_dict() == alone.document.to_dict()
    assert split.token.to_dict() == alone.token.to_dict()
    assert split.flag.to_dict() != alone.flag.to_dict()


def test_fold_models_never_see_their_own_fold():
    from unspin.build.calibrate import fold_models

    names = ("x",)
    rows = [{"x": float(i)} for i in range(20)]
    labels = [int(i >= 10) for i in range(20)]
    fold_of = [i % 5 for i in range(20)]
    models = fold_models(names, rows, labels, fold_of)
    assert sorted(models) == [0, 1, 2, 3, 4]
    assert models[0].probability(rows[0]) < 0.5 < models[4].probability(rows[19])
    # Flip one row's label: only the model of its own fold stays the same.
    flipped = labels[:]
    flipped[19] = 0
    again = fold_models(names, rows, flipped, fold_of)
    assert again[4] == models[4]
    assert all(again[k] != models[k] for k in range(4))


def test_a_spun_prior_moves_only_the_intercept_by_the_prior_odds():
    from unspin.build.calibrate import _at_prior

    model = LogisticModel(("x",), coef=(1.5,), intercept=0.2, mean=(0.0,), scale=(1.0,))
    labels = [1, 0, 0, 1]  # half spun
    quarter = _at_prior(model, labels, 0.25)
    assert quarter.coef == model.coef and quarter.intercept == pytest.approx(0.2 - math.log(3))
    # Odds of one in three against the training set's one in one: every probability's odds / 3.
    p, q = model.probability({"x": 0.7}), quarter.probability({"x": 0.7})
    assert q / (1 - q) == pytest.approx(p / (1 - p) / 3)
    assert _at_prior(model, labels, None) is model


def test_paragraph_rows_are_the_articles_own_paragraphs_half_spun(monkeypatch):
    from unspin.build import calibrate

    articles = ["\n".join([("alpha " * 45).strip(), "too short", ("beta " * 50).strip()]),
                "\n".join([("gamma " * 41).strip(), ("delta " * 60).strip()])]
    monkeypatch.setattr(calibrate, "iter_articles", lambda *a, **k: iter(articles))
    rows = calibrate.make_paragraphs(2, 0, UpperCaseSpinner())
    assert [(label, article) for _, label, _, article in rows] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert rows[0][0].startswith("alpha") and rows[0][2] is None
    assert rows[3][0].startswith("DELTA") and rows[3][2] is not None
    assert all(len(text.split()) >= 40 for text, *_ in rows)


def test_span_confidence_rises_when_the_original_survives_elsewhere_in_the_document():
    from unspin.detect import SPAN_FEATURES, Engine, original_elsewhere

    # A spinner that draws anew at each match leaves "said" in one sentence behind "stated" in another
    # (real ones replace a term alike throughout: the fitted model weighs it either way); a model that
    # weighs the count positively gives a suggestion found elsewhere more confidence.
    assert original_elsewhere("said", {"said": 2}) > original_elsewhere("said", {"said": 1}) > 0.0
    assert original_elsewhere("said", {"said": 9}) == original_elsewhere("said", {"said": 3})
    assert original_elsewhere("said", {"stated": 4}) == 0.0
    assert original_elsewhere("the plan", {"plan": 1}) == original_elsewhere("plan", {"plan": 1})
    n = len(SPAN_FEATURES)
    coef = [1.0 if name in ("posterior_logit", "original_elsewhere") else 0.0 for name in SPAN_FEATURES]
    cal = dataclasses.replace(Calibration.uncalibrated(), span=LogisticModel(SPAN_FEATURES, coef, 0.0,
                                                                             [0.0] * n, [1.0] * n))
    change = _change(0, 1, "said", 0.6)
    seen = cal.span_confidence(0.6, Engine.span_features(change, [0.9], 0.9, {"said": 2}))
    unseen = cal.span_confidence(0.6, Engine.span_features(change, [0.9], 0.9, {"plan": 2}))
    assert seen > unseen == cal.span_confidence(0.6, Engine.span_features(change, [0.9], 0.9))


def test_span_features_describe_the_change_among_its_neighbours_and_alternatives():
    from unspin.detect import Engine

    change = dataclasses.replace(_change(1, 2, "in", 0.7), first=1, last=2,
                                 alternatives=(("within", 0.2), ("inside", 0.1)))
    feats = Engine.span_features(change, [0.3, 0.9, 0.6], 0.9)
    assert feats.neighbor_token_p == 0.6
    assert feats.n_alternatives == 2.0 and round(feats.alternative_margin, 6) == 0.5
    content = Engine.span_features(_change(0, 1, "said", 0.7), [0.9], 0.9)
    assert content.neighbor_token_p == 0.0
    assert content.n_alternatives == 0.0 and content.alternative_margin == 0.7


def test_consistent_spins_are_half_of_the_spun_calibration_texts_on_both_channels(monkeypatch):
    from unspin.build import calibrate

    articles = [" ".join([f"word{i}"] * 400) for i in range(16)]
    monkeypatch.setattr(calibrate, "iter_articles", lambda *a, **k: iter(articles))
    spinner = UpperCaseSpinner()
    rows = calibrate.make_documents(16, 0, spinner, consistent=True)
    assert sum(label for _, label, _ in rows) == 8 and sum(spinner.consistent) == 4
    spun = [k for k, (_, label, _) in enumerate(rows) if label]
    # Rows go to the held-out channel in pairs (`_held_out_row`): each channel sees both kinds of spin.
    for held_out in (False, True):
        kinds = {c for k, c in zip(spun, spinner.consistent) if calibrate._held_out_row(k) == held_out}
        assert kinds == {False, True}
    plain = UpperCaseSpinner()
    calibrate.make_documents(16, 0, plain)
    assert not any(plain.consistent)


def test_p_spun_is_stated_for_a_share_of_spun_texts_that_depends_on_length():
    from unspin.detect import FEATURES
    from unspin.logistic import logit, sigmoid

    plain = Calibration.uncalibrated()
    banded = dataclasses.replace(plain, length_shifts=((0, -1.0), (200, 1.5)))
    short = {**dict.fromkeys(FEATURES, 0.0), "length": 0.6}     # 36 words
    long = {**dict.fromkeys(FEATURES, 0.0), "length": 2.0}      # 400 words
    for features, shift in ((short, -1.0), (long, 1.5)):
        assert banded.doc_probability(features) == pytest.approx(sigmoid(logit(plain.doc_probability(features)) + shift))
    # Saved and read back; a file from before length bands states one share for every length.
    again = Calibration.from_dict(json.loads(json.dumps(banded.to_dict())))
    assert again.length_shifts == ((0, -1.0), (200, 1.5)) and again == banded
    old = banded.to_dict()
    del old["length_shifts"]
    assert Calibration.from_dict(old).doc_probability(long) == plain.doc_probability(long)


def test_each_length_band_gets_the_largest_share_that_keeps_its_genuine_texts_below_the_line():
    from unspin.build.calibrate import MIN_BAND_TEXTS, choose_length_shifts
    from unspin.logistic import logit

    n = MIN_BAND_TEXTS
    # Short genuine texts: 5% read as spun even at a share of 0.2; long ones never come close.
    words = [45] * n + [120] * (n - 1) + [600] * n
    logits = [2.0] * (n // 20) + [-3.0] * (n - n // 20) + [2.0] * (n - 1) + [-8.0] * n
    shifts = dict(choose_length_shifts(words, logits, 0.5, 0.2, bands=(0, 100, 200), priors=(0.5, 0.2, 0.1)))
    assert shifts[0] == pytest.approx(logit(0.1) - logit(0.2), abs=1e-3)    # stricter for short texts
    assert shifts[100] == 0.0                                                # too few texts: the overall share
    assert shifts[200] == pytest.approx(logit(0.5) - logit(0.2), abs=1e-3)  # looser for long ones
