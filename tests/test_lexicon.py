"""Channel lookups on a tiny hand-built channel (and a quick check of the shipped one)."""
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
