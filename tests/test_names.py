"""The name gazetteer: lookups, the builder's runs, and the decoder's rule (toward a known name,
never away from one). Names here are made up for the tests."""
from dataclasses import replace

import numpy as np

from unspin.build.names import capitalized_runs as corpus_runs, count_names
from unspin.decode import Decoder, DecoderConfig, capitalized_runs
from unspin.names import NameGazetteer, name_hash
from unspin.text import sentences, tokenize


def test_gazetteer_lookups_and_round_trip(tmp_path):
    names = NameGazetteer.from_names(["Harbor Bank", "silver  lake council"])
    assert "harbor bank" in names and "silver lake council" in names
    assert "harbor tank" not in names and "lake council" not in names
    path = tmp_path / "names.npz"
    names.save(path)
    again = NameGazetteer.load(path)
    assert len(again) == 2 and np.array_equal(again.hashes, names.hashes)


def test_known_run_looks_only_at_sub_runs_touching_the_span():
    names = NameGazetteer.from_names(["north river"])
    run = ["the", "north", "river", "trust"]
    assert names.known_run(run, 1, 2) and names.known_run(run, 2, 3)
    assert not names.known_run(run, 3, 4) and not names.known_run(run, 0, 1)


def test_corpus_runs_stop_at_punctuation_and_lowercase_words():
    text = "Staff of Harbor Bank met Silver Lake Council members, then Tom Reed. Rain fell."
    assert list(corpus_runs(text)) == [["harbor", "bank"], ["silver", "lake", "council"], ["tom", "reed"]]


def test_count_names_counts_every_sub_run_of_two_to_four_words():
    counts = count_names(["Visit Silver Lake Council today.", "The Silver Lake office."], max_words=100)
    assert counts[name_hash("silver lake")] == 2
    assert counts[name_hash("visit silver lake council")] == 1
    assert counts[name_hash("silver lake council")] == 1


def test_capitalized_runs_of_a_sentence():
    toks = tokenize("Staff at Harbor Bank agreed with Ann.")
    assert capitalized_runs(toks) == {2: (2, 4), 3: (2, 4)}


def changes(lm, channel, text, names=None):
    dec = Decoder(lm, channel, DecoderConfig(), names)
    return [c for toks in sentences(text) for c in dec.decode(toks).changes]


def test_a_known_name_is_never_changed(tiny_lm, tiny_channel):
    text = "The soldiers returned from the Entrance Traces on monday."
    assert changes(tiny_lm, tiny_channel, text)  # without the gazetteer the words read as spun
    names = NameGazetteer.from_names(["entrance traces"])
    assert changes(tiny_lm, tiny_channel, text, names) == []


def test_a_change_that_makes_a_known_name_gets_the_name_bonus(tiny_lm, tiny_channel):
    text = "The soldiers returned from the Entrance Lines on monday."
    names = NameGazetteer.from_names(["front lines"])
    config = DecoderConfig()
    plain = {c.observed: c for c in changes(tiny_lm, tiny_channel, text)}
    named = {c.observed: c for c in changes(tiny_lm, tiny_channel, text, names)}
    assert named["Entrance"].original == "Front"
    assert named["Entrance"].channel_score == plain["Entrance"].channel_score + config.name_bonus
    assert named["Entrance"].posterior >= plain["Entrance"].posterior
    weaker = Decoder(tiny_lm, tiny_channel, replace(config, name_bonus=0.0), names)
    same = [c for toks in sentences(text) for c in weaker.decode(toks).changes]
    assert [c.channel_score for c in same] == [c.channel_score for c in plain.values()]


def test_proper_nouns_are_words_nearly_always_capitalized_inside_sentences():
    from collections import Counter

    from unspin.build.names import count_case, proper_nouns

    case = Counter()
    for _ in range(3):
        count_case("Trains from Lisbon run late. Ships left Lisbon and the harbor, then Harbor staff cheered.", case)
    assert proper_nouns(case, min_count=2, min_capitalized=0.95) == ["lisbon"]
    names = NameGazetteer.from_names(["harbor bank"], ["lisbon"])
    assert names.is_proper_noun("lisbon") and not names.is_proper_noun("harbor")


def test_a_capitalized_proper_noun_is_never_changed(tiny_lm, tiny_channel):
    text = "The soldiers returned from the front Traces on monday."
    assert any(c.observed == "Traces" for c in changes(tiny_lm, tiny_channel, text))
    names = NameGazetteer.from_names([], ["traces"])
    assert not any(c.observed == "Traces" for c in changes(tiny_lm, tiny_channel, text, names))
