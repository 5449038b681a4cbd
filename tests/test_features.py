"""Named feature vectors: one list of names per model, one conversion to an array, one sigmoid."""
import ast
import dataclasses
import doctest
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

import unspin
from unspin import detect, logistic, report
from unspin.decode import ChannelWeights, Decoder, DecoderConfig
from unspin.detect import (FEATURES, FLAG_FEATURES, MODEL_FEATURES, SPAN_FEATURES, TOKEN_FEATURES, Calibration,
                           DocumentFeatures, Engine, SpanFeatures, TokenFeatures, document_readings,
                           document_word_counts, flag_features)
from unspin.logistic import LogisticModel, feature_vector, logit, sigmoid
from unspin.text import sentences

PACKAGE = Path(unspin.__file__).parent


@pytest.fixture(scope="module")
def engine(tiny_lm, tiny_channel):
    heavy = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6))
    return Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), heavy)


def test_each_model_has_one_list_of_names():
    assert FEATURES == DocumentFeatures._fields
    assert TOKEN_FEATURES == TokenFeatures._fields
    assert SPAN_FEATURES == SpanFeatures._fields
    assert FLAG_FEATURES == TOKEN_FEATURES + ("token_logit", "doc_logit")
    assert tuple(flag_features(TokenFeatures(*[0.0] * len(TOKEN_FEATURES)), 0.5, 0.5)) == FLAG_FEATURES
    assert MODEL_FEATURES == {"document": FEATURES, "token": TOKEN_FEATURES, "span": SPAN_FEATURES,
                              "flag": FLAG_FEATURES}
    for names in MODEL_FEATURES.values():
        assert len(set(names)) == len(names)


def test_feature_vector_orders_by_name():
    names = ("b", "c", "a")
    assert feature_vector(names, {"a": 1.0, "b": 2.0, "c": 3.0}) == [2.0, 3.0, 1.0]
    assert feature_vector(names, {"c": 3, "a": 1, "b": 2, "extra": 7}) == [2.0, 3.0, 1.0]
    with pytest.raises(KeyError, match=r"lacks \['c'\]"):
        feature_vector(names, {"a": 1.0, "b": 2.0})


def test_feature_vector_reads_a_named_tuple_by_name():
    tf = TokenFeatures(*[float(i) for i in range(len(TOKEN_FEATURES))])
    assert feature_vector(TOKEN_FEATURES, tf) == list(tf)
    reordered = TOKEN_FEATURES[::-1]
    assert feature_vector(reordered, tf) == [getattr(tf, n) for n in reordered]


def test_probability_matches_the_formula_whatever_the_key_order():
    rng = random.Random(3)
    names = tuple(f"f{i}" for i in range(6))
    model = LogisticModel(names, [rng.uniform(-2, 2) for _ in names], 0.3,
                          [rng.uniform(-1, 1) for _ in names], [rng.uniform(0.5, 2) for _ in names])
    x = {n: rng.uniform(-3, 3) for n in names}
    z = model.intercept + sum(c * (x[n] - m) / s for n, c, m, s in zip(names, model.coef, model.mean, model.scale))
    expected = 1 / (1 + math.exp(-z))
    assert model.probability(x) == pytest.approx(expected, rel=1e-12)
    shuffled = dict(sorted(x.items(), key=lambda kv: rng.random()))
    assert model.probability(shuffled) == model.probability(x)


def test_model_checks_its_shape():
    with pytest.raises(ValueError, match="needs 2 coefficients"):
        LogisticModel(("a", "b"), [1.0], 0.0, [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="duplicate"):
        LogisticModel(("a", "a"), [1.0, 1.0], 0.0, [0.0, 0.0], [1.0, 1.0])
    m = LogisticModel(["a"], [1], 0.0, [0], [1])
    assert m.features == ("a",) and LogisticModel.from_dict(m.to_dict()) == m


def test_calibration_refuses_a_model_over_other_features():
    with pytest.raises(ValueError, match="document model"):
        Calibration(LogisticModel.zero(FEATURES[:-1]))
    with pytest.raises(ValueError, match="token model"):
        Calibration(LogisticModel.zero(FEATURES), token=LogisticModel.zero(SPAN_FEATURES))


def test_token_model_reads_features_by_name():
    # Weight only `change_p_spun`: the probability must follow that field and no other.
    coef = [1.0 if n == "change_p_spun" else 0.0 for n in TOKEN_FEATURES]
    n = len(TOKEN_FEATURES)
    token = LogisticModel(TOKEN_FEATURES, coef, 0.0, [0.0] * n, [1.0] * n)
    cal = dataclasses.replace(Calibration.uncalibrated(), token=token)
    base = TokenFeatures(*[0.0] * n)
    assert cal.token_probability(base) == 0.5
    assert cal.token_probability(base._replace(change_p_spun=2.0)) == pytest.approx(sigmoid(2.0))
    assert cal.token_probability(base._replace(suspicion_logit=5.0, ngram=3.0)) == 0.5
    assert cal.token_probability(base._replace(change_p_spun=2.0)._asdict()) == pytest.approx(sigmoid(2.0))


def test_engine_builds_named_token_features(engine):
    toks = next(sentences("The minister mentioned the plan."))
    decoding = engine.decoder.decode(toks)
    feats = engine.token_features(decoding)
    assert len(feats) == len(toks) and feats[-1] is None  # the full stop
    by_word = {t.text: f for t, f in zip(toks, feats) if f is not None}
    for tok, f, ev in zip(toks, feats, decoding.evidence):
        if f is None:
            continue
        assert isinstance(f, TokenFeatures)
        assert f.pmi == ev.logprob - ev.unigram and f.suspicion_logit == logit(ev.suspicion)
        assert f.log_candidates == math.log1p(ev.n_candidates)
    assert by_word["the"].function_word == 1.0 and by_word["minister"].function_word == 0.0
    assert by_word["mentioned"].change_p_spun > 0.5 and by_word["minister"].change_p_spun == 0.0


def test_engine_builds_named_document_and_span_features(engine):
    text = "The minister mentioned the scheme would price extra than expected."
    decodings = engine.decode(text)
    feats = engine.features(text, decodings)
    assert tuple(feats) == FEATURES
    n_words = sum(d.n_words for d in decodings)
    n_changes = sum(1 for d in decodings for c in d.changes if c.posterior >= 0.5)
    assert feats["changes_per_100"] == pytest.approx(100.0 * n_changes / n_words) and n_changes >= 3
    d = decodings[0]
    probs = [0.1 * i for i in range(len(d.tokens))]
    for c in d.changes:
        sf = engine.span_features(c, probs, 0.97)
        assert isinstance(sf, SpanFeatures)
        assert sf.posterior_logit == logit(c.posterior) and sf.lm_gain == c.lm_gain
        assert sf.token_p == max(probs[c.first:c.last]) and sf.doc_logit == logit(0.97)


def test_document_rates_are_also_weighed_by_length(engine):
    # The same sentences four times: the same rates, twice the sqrt(length), so twice the
    # length-weighed evidence, and a mark counted once whatever the length.
    text = "The minister mentioned the scheme would price extra than expected. The U. N. agreed."
    once = engine.features(text, engine.decode(text))
    longer = " ".join([text] * 4)
    four = engine.features(longer, engine.decode(longer))
    assert four["mass_per_100"] == pytest.approx(once["mass_per_100"]) and once["mass_per_100"] > 0
    assert four["length"] == pytest.approx(2 * once["length"])
    for name, rate in (("mass_x_length", "mass_per_100"), ("flagged_x_length", "flagged_per_100"),
                       ("token_p_x_length", "mean_token_p"), ("gain_x_length", "gain_per_word")):
        assert four[name] == pytest.approx(four[rate] * four["length"])
        assert four[name] == pytest.approx(2 * once[name])
    assert once["rewriter_marks"] == pytest.approx(math.log(2))
    assert four["rewriter_marks"] == pytest.approx(math.log(5))


def test_check_uses_the_calibration_models(engine):
    """The document probability in a result is the document model applied to the result's features."""
    text = "The minister mentioned the scheme would price extra than expected."
    result = engine.check(text)
    assert result.spin_probability == engine.calibration.document.probability(result.features)
    # A document model that reads only `changes_per_100`, by name: P = sigmoid((changes_per_100 - 20) / 10).
    coef = [1.0 if n == "changes_per_100" else 0.0 for n in FEATURES]
    n = len(FEATURES)
    only_changes = dataclasses.replace(engine.calibration, document=LogisticModel(
        FEATURES, coef, 0.0, [20.0] + [0.0] * (n - 1), [10.0] + [1.0] * (n - 1)))
    again = Engine(engine.lm, engine.channel, only_changes, engine.config).check(text)
    assert again.features == result.features
    assert again.spin_probability == pytest.approx(sigmoid((result.features["changes_per_100"] - 20.0) / 10.0))


def test_one_sigmoid_and_logit_in_the_package():
    """sigmoid/logit and the logistic formula live in unspin/logistic.py only."""
    assert detect.sigmoid is logistic.sigmoid and detect.logit is logistic.logit
    for path in PACKAGE.rglob("*.py"):
        if path.name == "logistic.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not names & {"sigmoid", "logit", "_sigmoid", "_logit", "_linear_probability"}, path


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported by a file outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_report_does_not_import_detect_or_trace_at_run_time():
    imports = _runtime_imports(PACKAGE / "report.py")
    assert not imports & {".detect", ".trace", "unspin.detect", "unspin.trace"}, imports
    assert ".report" in _runtime_imports(PACKAGE / "detect.py")
    assert ".report" in _runtime_imports(PACKAGE / "trace.py")


@pytest.mark.parametrize("module", [detect, logistic, report], ids=lambda m: m.__name__)
def test_public_api_is_documented_with_examples(module):
    import inspect

    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        assert obj.__doc__ and ">>>" in obj.__doc__, f"{module.__name__}.{name} has no docstring example"
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert results.failed == 0 and results.attempted > 0


def test_span_features_count_agreeing_readings_of_the_same_words(engine):
    # The same odd word three times: a spinner that treats a term alike throughout a page reads the
    # same original wherever its replacement stands.
    text = ("The minister mentioned the plan. The mayor mentioned the cost. "
            "Her aide mentioned the date. The cat sat on the mat.")
    decodings = engine.decode(text)
    readings = document_readings(decodings)
    changes = [c for d in decodings for c in d.changes if c.observed.lower() == "mentioned"]
    assert len(changes) == 3 and readings[("mentioned",)] == {changes[0].original.lower(): 3}
    counts = document_word_counts(decodings)
    alone = engine.span_features(changes[0], [0.5] * 10, 0.9, counts)
    pooled = engine.span_features(changes[0], [0.5] * 10, 0.9, counts, readings)
    assert alone.agreeing_changes == 0.0 and pooled.agreeing_changes == pytest.approx(math.log(3))
    assert pooled.other_readings == 0.0 and pooled.observed_repeats == pytest.approx(math.log(3))
    other = {("mentioned",): {changes[0].original.lower(): 1, "noted": 2}}
    mixed = engine.span_features(changes[0], [0.5] * 10, 0.9, counts, other)
    assert mixed.agreeing_changes == 0.0 and mixed.other_readings == pytest.approx(math.log(3))
