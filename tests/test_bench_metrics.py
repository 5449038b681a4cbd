"""Benchmark metric functions, and the harness end to end with a small fake engine."""
import json
import math

import pytest

from unspin.build import bench_core as bench
from unspin.build.bench_core import (
    Article, binary_metrics, detection_metrics, edit_distance, false_edits_per_100, prf, relative_cut, roc_auc,
    span_token_mask, token_counts, token_prf, wer, word_tokens,
)
from unspin.detect import CheckResult, RestoreResult, Span
from unspin.build.spinner import Spinner


def test_auc_perfect_and_inverted():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_auc_ties_and_known_value():
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    # pos {0.4, 0.8}, neg {0.3, 0.6}: pairs won 0.4>0.3, 0.8>0.3, 0.8>0.6 -> 3/4
    assert roc_auc([1, 0, 1, 0], [0.4, 0.3, 0.8, 0.6]) == 0.75
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_auc_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    import random

    rng = random.Random(0)
    y = [rng.randint(0, 1) for _ in range(200)]
    s = [round(rng.random(), 1) for _ in range(200)]
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))


def test_binary_metrics_known():
    m = binary_metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 1)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5 and m["accuracy"] == 0.5
    d = detection_metrics([1, 0], [0.7, 0.2])
    assert d["auc"] == 1.0 and d["f1"] == 1.0 and d["mean_p_spun"] == 0.7


def test_prf_edge_cases():
    assert prf(0, 0, 0)["f1"] == 0.0
    m = prf(2, 2, 0)
    assert m["precision"] == 0.5 and m["recall"] == 1.0 and m["f1"] == pytest.approx(2 / 3)


def test_wer():
    assert wer("The cat sat.", "the cat sat") == 0.0
    assert wer("a b c d", "a b c d") == 0.0
    assert wer("a x c d", "a b c d") == 0.25          # one substitution
    assert wer("a b c", "a b c d") == 0.25            # one deletion
    assert wer("a b c d e", "a b c d") == 0.25        # one insertion
    assert wer("", "") == 0.0
    assert word_tokens("Don't stop, 3 times!") == ["don", "'t", "stop", "3", "times"]
    assert edit_distance(["a", "b"], ["b", "a"]) == 2


def test_relative_cut_and_false_edits():
    assert relative_cut(0.2, 0.05) == pytest.approx(0.75)
    assert relative_cut(0.0, 0.0) == 0.0
    assert relative_cut(0.1, 0.2) == pytest.approx(-1.0)
    assert false_edits_per_100("one two three four", "one two three four") == 0.0
    assert false_edits_per_100("one two three four", "one 2 three four") == 25.0


def S(start: int, end: int, confidence: float = 1.0) -> Span:
    return Span(start, end, "", None, confidence)


def test_span_token_mask_and_token_prf():
    text = "The big cat sat."
    #       0123456789
    assert span_token_mask(text, [S(4, 7)]) == [False, True, False, False]
    assert span_token_mask(text, [S(5, 10)]) == [False, True, True, False]   # partial overlaps count
    assert span_token_mask(text, [S(4, 7, 0.2)], min_confidence=0.5) == [False] * 4
    assert span_token_mask(text, []) == [False] * 4
    pred = [False, True, True, False]
    gold = [False, True, False, True]
    assert token_counts(pred, gold) == (1, 1, 1)
    assert token_prf(pred, gold)["f1"] == 0.5
    assert token_prf(gold, gold)["f1"] == 1.0


# ----------------------------------------------------------------- harness with a fake engine

SETS = [["big", "large"], ["cat", "kitten"], ["quick", "fast", "rapid"], ["said", "stated"],
        ["house", "home"], ["road", "street"]]
REVERSE = {"large": "big", "kitten": "cat", "fast": "quick", "rapid": "quick", "stated": "said",
           "home": "house", "street": "road"}


class OracleEngine:
    """Knows the spinner's dictionary: flags and reverts the replacement words."""

    def __init__(self, channel=None):
        self.channel = channel

    def check(self, text):
        from unspin.text import match_case, tokenize

        spans = [Span(t.start, t.end, t.text, match_case(t.text, REVERSE[t.norm]), 0.9)
                 for t in tokenize(text) if t.norm in REVERSE]
        out = text
        for s in sorted(spans, key=lambda s: -s.start):
            out = out[:s.start] + s.suggestion + out[s.end:]
        words = max(1, len(text.split()))
        return CheckResult(min(1.0, 10 * len(spans) / words), "", spans, out)

    def restore(self, text, min_confidence=0.5):
        r = self.check(text)
        return RestoreResult(r.restored, r.spans)


def _articles():
    base = ("The big cat walked down the road to the house and the owner said it was quick. "
            "A neighbour on the road said the cat was big and quick, and the house was quiet. ")
    plain = ("Nothing in this paragraph belongs to the small dictionary used here, so the oracle has "
             "nothing to flag and should leave every single word exactly where it stands today. ")
    return [Article(f"a{i}", "test", (base * 3 + "\n" + plain * 2 + "\n" + base * 2)) for i in range(4)]


def test_run_core_with_fake_engine(tmp_path):
    sp = Spinner(SETS, name="moby")
    wn = Spinner(SETS, name="wordnet")
    pairs = [{"id": "p1", "style": "thesaurus", "spun": "The large kitten.", "original": "The big cat."}]
    rep = bench.run_core(n_articles=4, engine_factory=OracleEngine, articles=_articles(), dev_pairs=pairs,
                         spinners={"moby": sp, "wordnet": wn}, build_channels=False, quiet=True,
                         n_paragraphs=4, n_wordnet=2, target_fraction=0.2)
    m = rep["moby"]
    assert m["detection_articles"]["auc"] == 1.0
    assert m["localization_any_span"]["precision"] == 1.0
    assert m["localization_any_span"]["recall"] == 1.0
    assert m["restoration"]["wer_before"] > 0.05
    assert m["restoration"]["wer_after"] == 0.0
    assert m["restoration"]["relative_cut"] == 1.0
    assert m["false_edits_per_100_genuine"] == 0.0
    assert 0.1 < m["mean_changed_fraction"] < 0.3
    assert rep["dev"]["overall"]["wer_after"] == 0.0
    assert rep["dev"]["pairs"][0]["wer_before"] == pytest.approx(2 / 3, abs=1e-3)
    assert rep["wordnet"]["detection_articles"]["n"] == 4
    assert rep["speed"]["words"] > 0 and rep["speed"]["engine_load_s"] >= 0
    pj, pm = bench.write_report(rep, tmp_path)
    data = json.loads(pj.read_text())
    assert data["config"]["n_articles"] == 4 and data["git_commit"]
    assert "Real spun pairs" in pm.read_text()


def test_load_articles_shape():
    data = bench.corpus.default_data_dir()
    if not (data / "corpora" / "gum" / "gum_docs.jsonl").exists():
        pytest.skip("shared data not available")
    arts = bench.load_articles(10)
    assert len(arts) == 10
    assert {a.source.split("-")[0] for a in arts} == {"wikinews", "enwiki", "gum"}
    for a in arts:
        assert 300 <= len(a.text.split()) <= 800
