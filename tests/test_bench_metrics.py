"""Benchmark metric functions, and the harness end to end with a small fake engine."""
import json
import math

import pytest

from unspin.build import bench_core as bench
from unspin.build.bench_core import Article
from unspin.build.metrics import (
    binary_metrics, detection_metrics, edit_distance, false_edits, false_edits_per_100, mean, n_words, per_100, prf,
    rate, relative_cut, roc_auc, span_token_mask, token_counts, token_prf, wer, word_edits, word_tokens,
)
from unspin.build.spinner import Spinner
from unspin.detect import CheckResult, RestoreResult, Span


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


def _levenshtein(a, b):
    """Textbook dynamic-programming edit distance, the reference for the rapidfuzz-backed one."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_edit_distance_agrees_with_the_textbook_recurrence():
    import random

    rng = random.Random(7)
    vocab = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", ",", "3", "'s"]
    for _ in range(300):
        a = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        b = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        assert edit_distance(a, b) == _levenshtein(a, b), (a, b)
    assert edit_distance([], ["x", "y"]) == 2
    assert edit_distance(("kept", "as", "tuple"), ["kept", "as", "list"]) == 1


def test_word_edits_are_the_sums_of_a_pooled_wer():
    assert word_edits("a x c d", "a b c d") == (1, 4)
    assert word_edits("", "a b") == (2, 2)
    assert word_edits("Same words, other punctuation!", "same words other punctuation") == (0, 4)
    # Pooled over texts, a long text weighs more than a short one.
    texts = [("a x", "a b"), ("p q r s t u v w", "p q r s t u v w")]
    edits = [word_edits(h, r) for h, r in texts]
    assert rate(sum(e for e, _ in edits), sum(n for _, n in edits)) == pytest.approx(0.1)
    assert wer("x", "") == 1.0 and wer("", "") == 0.0


def test_rates_and_means():
    assert rate(3, 4) == 0.75 and rate(5, 0) == 5.0 and rate(0, 0) == 0.0
    assert per_100(1, 8) == 12.5 and per_100(0, 0) == 0.0
    assert mean([1.0, None, float("nan"), 3.0]) == 2.0
    assert math.isnan(mean([])) and math.isnan(mean([None]))
    assert n_words("It's 4 o'clock, isn't it?") == len(word_tokens("It's 4 o'clock, isn't it?"))


def test_relative_cut_and_false_edits():
    assert relative_cut(0.2, 0.05) == pytest.approx(0.75)
    assert relative_cut(0.0, 0.0) == 0.0
    assert relative_cut(0.1, 0.2) == pytest.approx(-1.0)
    assert relative_cut(0.0, 0.1) == float("-inf")
    assert false_edits_per_100("one two three four", "one two three four") == 0.0
    assert false_edits_per_100("one two three four", "one 2 three four") == 25.0
    assert false_edits("one two three four", "one two four") == (1, 4)
    assert false_edits_per_100("", "words added to nothing") == 0.0


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


def test_run_core_with_fake_engine(tmp_path, capsys):
    sp = Spinner(SETS, name="moby")
    wn = Spinner(SETS, name="wordnet")
    pairs = [{"id": "p1", "style": "thesaurus", "spun": "The large kitten.", "original": "The big cat."}]
    rep = bench.run_core(n_articles=4, engine_factory=OracleEngine, articles=_articles(), dev_pairs=pairs,
                         spinners={"moby": sp, "wordnet": wn}, build_channels=False,
                         n_paragraphs=4, n_wordnet=2, target_fraction=0.2)
    assert capsys.readouterr().err == ""  # a library run is silent unless asked for progress
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
    assert rep["moby_function"]["detection_articles"]["n"] == 4      # the first 2 articles, genuine and spun
    assert rep["moby_function"]["spinner"] == "moby+function"
    assert rep["moby_function"]["restoration"]["wer_before"] > 0.0
    assert rep["moby_consistent"]["detection_articles"]["n"] == 4    # the first 2 articles again
    assert rep["moby_consistent"]["restoration"]["wer_after"] == 0.0
    assert rep["speed"]["words"] > 0 and rep["speed"]["engine_load_s"] >= 0
    # Speed apart for the texts read as spun (the spun pass decodes them again) and the others.
    by_reading = rep["speed"]["by_reading"]
    assert by_reading["spun"]["words"] > 0 and by_reading["genuine"]["words"] > 0
    assert by_reading["spun"]["words"] + by_reading["genuine"]["words"] == rep["speed"]["words"]
    # The genuine modern news paragraphs shipped with the benchmark, each checked once.
    assert rep["modern_news"]["n"] == len(bench.load_modern_news()) >= 30
    pj, pm = bench.write_report(rep, tmp_path)
    data = json.loads(pj.read_text())
    assert data["config"]["n_articles"] == 4 and data["git_commit"]
    assert "Real spun pairs" in pm.read_text() and "Genuine modern news" in pm.read_text()
    assert "read as spun, so decoded again by the spun pass" in pm.read_text()
    assert "| moby | moby + function words (first articles) | moby, each term alike throughout (first articles) | wordnet |" in pm.read_text()


def test_function_word_spinner_swaps_function_words():
    spinner = Spinner(SETS, name="tiny").with_function_words()
    text = "Despite the rain the big cat stayed because the road was quiet."
    spun = spinner.spin_to_fraction(text, 1.0, seed=3).text
    assert not spun.startswith("Despite") and "because" not in spun, spun
    assert Spinner(SETS, name="tiny").spin_to_fraction(text, 1.0, seed=3).text.startswith("Despite")


def test_load_articles_shape():
    data = bench.corpus.default_data_dir()
    if not (data / "corpora" / "gum" / "gum_docs.jsonl").exists():
        pytest.skip("shared data not available")
    arts = bench.load_articles(10)
    assert len(arts) == 10
    assert {a.source.split("-")[0] for a in arts} == {"wikinews", "enwiki", "gum"}
    for a in arts:
        assert 300 <= len(a.text.split()) <= 800


def test_bench_progress_options():
    import argparse

    from unspin.build import bench_trace

    for module in (bench, bench_trace):
        p = argparse.ArgumentParser()
        module.add_arguments(p)
        assert p.parse_args([]).progress is None
        assert p.parse_args(["--progress"]).progress is True
        assert p.parse_args(["--no-progress"]).progress is False
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    assert p.parse_args(["--quiet"]).progress is False


def test_progress_writes_to_stderr_only_when_enabled(capsys):
    quiet = bench.Progress()
    quiet("hidden message")
    assert list(quiet.bar([1, 2, 3], desc="items")) == [1, 2, 3]
    assert capsys.readouterr() == ("", "")
    loud = bench.Progress(enabled=True)
    loud("shown message")
    assert list(loud.bar(["a", "b"], desc="letters")) == ["a", "b"]
    captured = capsys.readouterr()
    assert captured.out == "" and "shown message" in captured.err and "letters" in captured.err


def test_data_folder_lookup(monkeypatch, tmp_path):
    from pathlib import Path

    import unspin
    from unspin.build.corpus import default_data_dir

    monkeypatch.setenv("UNSPIN_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("UNSPIN_DATA")
    checkout = Path(unspin.__file__).resolve().parents[1]
    beside = checkout.parent / "shared" / "data"
    if beside.exists():
        assert default_data_dir() == beside
    else:
        assert default_data_dir() in (beside, checkout / "shared" / "data")
