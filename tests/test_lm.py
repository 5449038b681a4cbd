"""The KenLM wrapper, the tiny ARPA writer and the LM training helpers.

`tiny_lm` (the model) and `tiny_corpus` (the sentences it was trained on) come from conftest.py.
"""
from __future__ import annotations

import argparse
import math

import pytest

kenlm = pytest.importorskip("kenlm")

from unspin import text  # noqa: E402
from unspin.build import train_lm as train_lm_module  # noqa: E402
from unspin.build.train_lm import KenLMToolsMissing, fast_lm_sentences, find_kenlm_tool, write_arpa  # noqa: E402
from unspin.lm import DEFAULT_LM_PATH, KenLM, ModelMissing, load_lm  # noqa: E402


def _incremental(lm, words, eos=True):
    state = lm.begin_state()
    total = 0.0
    for w in words:
        s, state = lm.score(state, w)
        total += s
    if eos:
        total += lm.end_score(state)
    return total


def test_arpa_header_and_order(tmp_path, tiny_lm):
    assert tiny_lm.order == 3
    lines = tiny_lm.path.read_text().splitlines()
    assert lines[0] == "\\data\\" and lines[-1] == "\\end\\"
    unigrams = {line.split("\t")[1] for line in lines if line.count("\t") >= 1 and len(line.split("\t")[1].split()) == 1}
    assert {"<s>", "</s>", "<unk>", "minister"} <= unigrams


def test_incremental_scores_agree_with_sentence_score(tiny_lm, tiny_corpus):
    for sent in tiny_corpus + ["the police returned from the coast .", "a storm arrived on friday ."]:
        words = sent.split()
        assert _incremental(tiny_lm, words) == pytest.approx(tiny_lm.sentence_score(words), abs=1e-4)


def test_sentence_score_without_eos(tiny_lm):
    words = "the minister said the".split()
    assert _incremental(tiny_lm, words, eos=False) == pytest.approx(
        tiny_lm.sentence_score(words, eos=False), abs=1e-4)


def test_seen_sentence_beats_scrambled(tiny_lm, tiny_corpus):
    for sent in tiny_corpus:
        words = sent.split()
        scrambled = words[::-1]
        assert tiny_lm.sentence_score(words) > tiny_lm.sentence_score(scrambled) + 1.0


def test_synonym_swap_scores_lower(tiny_lm):
    # The kind of choice the decoder makes: the seen word beats an unseen substitute.
    seen = "the police said the road was closed .".split()
    swapped = "the police said the street was closed .".split()
    assert tiny_lm.sentence_score(seen) > tiny_lm.sentence_score(swapped)


def test_probabilities_are_normalized(tiny_lm, tiny_corpus):
    vocab = sorted({w for s in tiny_corpus for w in s.split()} | {"</s>", "<unk>"})
    for context in ([], ["the"], ["the", "front"], ["on", "monday"], ["zebra"]):
        state = tiny_lm.begin_state()
        for w in context:
            _, state = tiny_lm.score(state, w)
        total = sum(10 ** tiny_lm.score(state, w)[0] for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4)


def test_unknown_words_and_contains(tiny_lm):
    assert tiny_lm.contains("minister")
    assert not tiny_lm.contains("zebra")
    state = tiny_lm.begin_state()
    s_unk, _ = tiny_lm.score(state, "zebra")
    s_unk2, _ = tiny_lm.score(state, "giraffe")
    assert s_unk == s_unk2 < tiny_lm.score(state, "the")[0]
    assert math.isfinite(s_unk)


def test_null_state_differs_from_sentence_start(tiny_lm):
    # "the" starts most sentences: more likely right after <s> than with no context.
    s_bos, _ = tiny_lm.score(tiny_lm.begin_state(), "the")
    s_null, _ = tiny_lm.score(tiny_lm.null_state(), "the")
    assert s_bos > s_null


def test_other_orders_load(tmp_path, tiny_corpus):
    for order in (2, 4):
        lm = KenLM(write_arpa(tiny_corpus, tmp_path / f"o{order}.arpa", order=order))
        assert lm.order == order
        words = tiny_corpus[0].split()
        assert _incremental(lm, words) == pytest.approx(lm.sentence_score(words), abs=1e-4)
    with pytest.raises(ValueError):
        write_arpa(tiny_corpus, tmp_path / "o1.arpa", order=1)


def test_load_lm_missing(tmp_path):
    with pytest.raises(ModelMissing):
        load_lm(str(tmp_path / "nope.binary"))


def test_fast_tokenization_matches_text_module():
    paragraphs = [
        "Mr. Smith went to Washington. He said “it’s fine” and left at 4:30 p.m. on Jan. 5th!",
        "The U. N. sent 4, 000 troops — about 1,250.5 per region. Don't they know? Yes_they do.",
        "Prices rose 3.5% in the U.S. last year (according to J. Doe).\nA new line starts here.",
        "Ελλάδα ΟΔΟΣ test. Ünïcode wörds café's menu; end…",
        "   ",
    ]
    for para in paragraphs:
        assert list(fast_lm_sentences(para)) == list(text.lm_sentences(para))


def test_progress_option_defaults_to_the_terminal():
    p = argparse.ArgumentParser()
    train_lm_module.add_arguments(p)
    assert p.parse_args([]).progress is None
    assert p.parse_args(["--progress"]).progress is True
    assert p.parse_args(["--no-progress"]).progress is False
    assert p.parse_args(["--quiet"]).progress is False


def test_missing_tools_error_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KENLM_BIN", raising=False)
    with pytest.raises(KenLMToolsMissing, match="cmake"):
        find_kenlm_tool("lmplz", kenlm_bin=tmp_path / "nowhere")


@pytest.mark.skipif(not DEFAULT_LM_PATH.exists(), reason="packaged model not built")
def test_packaged_model_prefers_fluent_text():
    lm = load_lm(str(DEFAULT_LM_PATH))
    assert lm.order >= 3
    fluent = "the government said on tuesday that the new law would take effect next year .".split()
    swapped = "the administration said on tuesday that the novel law would take consequence next year .".split()
    assert lm.sentence_score(fluent) > lm.sentence_score(swapped)
    assert lm.sentence_score(fluent) > lm.sentence_score(fluent[::-1])
    assert _incremental(lm, fluent) == pytest.approx(lm.sentence_score(fluent), abs=1e-3)


def _kenlm_tools_available() -> bool:
    try:
        find_kenlm_tool("lmplz")
        find_kenlm_tool("build_binary")
        return True
    except KenLMToolsMissing:
        return False


@pytest.mark.skipif(not _kenlm_tools_available(), reason="lmplz/build_binary not built (set KENLM_BIN)")
@pytest.mark.parametrize("vocab_size", [None, 20])
def test_train_lm_end_to_end(tmp_path, vocab_size, tiny_corpus, capsys):
    import gzip

    from unspin.build.train_lm import train_lm

    folder = tmp_path / "data" / "corpora" / "toy"
    folder.mkdir(parents=True)
    paragraphs = [s.capitalize().replace(" .", ".") for s in tiny_corpus] * 5
    with gzip.open(folder / "toy.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(paragraphs) + "\n")
    out = train_lm(tmp_path / "toy.binary", data_dir=tmp_path / "data", order=3, prune=(0, 0, 0),
                   vocab_size=vocab_size, memory="100M", workers=1)
    assert capsys.readouterr().err == ""  # silent unless a log callback or tool output is asked for
    lm = KenLM(out)
    assert lm.order == 3
    words = tiny_corpus[0].split()
    assert lm.sentence_score(words) > lm.sentence_score(words[::-1])
    assert _incremental(lm, words) == pytest.approx(lm.sentence_score(words), abs=1e-3)


def _fake_kenlm_tools(folder):
    """Stand-ins for lmplz and build_binary: they write a real (tiny) model, and chatter on
    stdout and stderr as the real tools do, so that the pipeline around them can be tested."""
    import stat
    import sys

    folder.mkdir()
    lmplz = folder / "lmplz"
    lmplz.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "from unspin.build.train_lm import write_arpa\n"
        "args = sys.argv[1:]\n"
        "sentences = sys.stdin.read().splitlines()\n"
        "print('fake lmplz: counting', file=sys.stderr)\n"
        "write_arpa(sentences, args[args.index('--arpa') + 1], order=int(args[args.index('-o') + 1]))\n",
        encoding="utf-8")
    build_binary = folder / "build_binary"
    build_binary.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "print('fake build_binary: writing')\n"
        "print('fake build_binary: done', file=sys.stderr)\n"
        "shutil.copyfile(sys.argv[-2], sys.argv[-1])\n",
        encoding="utf-8")
    for tool in (lmplz, build_binary):
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return folder


def _toy_data(tmp_path, tiny_corpus):
    import gzip

    folder = tmp_path / "data" / "corpora" / "toy"
    folder.mkdir(parents=True)
    with gzip.open(folder / "toy.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(s.capitalize().replace(" .", ".") for s in tiny_corpus) + "\n")
    return tmp_path / "data"


def test_train_lm_is_silent_by_default_and_reports_to_a_callback(tmp_path, tiny_corpus, capfd):
    from unspin.build.train_lm import train_lm

    tools = _fake_kenlm_tools(tmp_path / "bin")
    data = _toy_data(tmp_path, tiny_corpus)
    out = train_lm(tmp_path / "quiet.binary", data_dir=data, order=3, kenlm_bin=tools, workers=1)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # not even the tools' own chatter
    assert KenLM(out).order == 3

    messages = []
    train_lm(tmp_path / "loud.binary", data_dir=data, order=3, kenlm_bin=tools, workers=1, vocab_size=5,
             log=messages.append, tool_output=True)
    captured = capfd.readouterr()
    assert captured.out == ""  # build_binary's stdout goes to stderr: stdout is for results
    assert "fake lmplz" in captured.err and "fake build_binary: writing" in captured.err
    assert any("sentences tokenized" in m for m in messages) and any(m.startswith("wrote ") for m in messages)
