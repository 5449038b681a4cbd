"""Fixtures shared by the test modules: one tiny language model and one tiny channel.

Both are built from the hand-written lines below in well under a second, once per test
session, so that the decoder, the engine and the command line can be tested end to end
without the shipped models.
"""
import pytest

from unspin.build.channel import channel_from_relations
from unspin.build.train_lm import write_arpa

# Hand-written news-style sentences in the LM training format (lowercased, tokens joined by spaces).
TINY_CORPUS = [
    "the minister said the plan would cost more than expected .",
    "the minister said the plan was ready .",
    "the police said the road was closed .",
    "officials said the storm would reach the coast on monday .",
    "the company said the new plant would open next year .",
    "the soldiers said the front lines were quiet .",
    "the soldiers returned from the front lines .",
    "she said the report was late .",
    "he said more troops would arrive .",
    "more troops arrived at the front lines on monday .",
    # The words spinners put in are rare in news but known to a real LM: known here too.
    "the old letter mentioned a river and stated its name .",
]
# How often the corpus is repeated for the model: enough counts for stable discounts.
TINY_CORPUS_REPEAT = 3

# Lemma-level synonym pairs of the tiny channel (symmetric, re-inflected when it is built).
TINY_RELATIONS = [
    ("say", "mention"), ("say", "state"), ("more", "extra"), ("front", "entrance"),
    ("line", "trace"), ("soldier", "infantryman"), ("plan", "scheme"), ("cost", "price"),
]


@pytest.fixture(scope="session")
def tiny_corpus() -> list[str]:
    """The sentences the tiny language model was trained on (each counted TINY_CORPUS_REPEAT times)."""
    return list(TINY_CORPUS)


@pytest.fixture(scope="session")
def tiny_arpa(tmp_path_factory):
    """Path of the tiny trigram model (ARPA text, written by unspin.build.train_lm.write_arpa)."""
    path = tmp_path_factory.mktemp("tiny-lm") / "tiny.arpa"
    write_arpa(TINY_CORPUS * TINY_CORPUS_REPEAT, path, order=3)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tiny_arpa):
    """The tiny model loaded with KenLM (unspin.lm.KenLM)."""
    pytest.importorskip("kenlm")
    from unspin.lm import KenLM

    return KenLM(tiny_arpa)


@pytest.fixture(scope="session")
def tiny_channel():
    """A channel of TINY_RELATIONS and their inflected forms (no frequency pruning, no GloVe)."""
    return channel_from_relations(TINY_RELATIONS)


@pytest.fixture(scope="session")
def tiny_channel_path(tiny_channel, tmp_path_factory):
    """The tiny channel saved as a file, as `--channel` reads it."""
    path = tmp_path_factory.mktemp("tiny-channel") / "tiny.npz"
    tiny_channel.save(path)
    return path


@pytest.fixture(scope="session")
def models(tiny_arpa, tiny_channel_path) -> list[str]:
    """Command-line options that make `unspin check|restore` use the tiny model and channel."""
    return ["--lm", str(tiny_arpa), "--channel", str(tiny_channel_path)]
