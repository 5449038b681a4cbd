"""The shortcuts taken for speed give what the plain way gives: the alignment's phrase search tries
only spans the channel lists and looks each word up once per block, the compiled sequence matcher
finds difflib's blocks, the index reads its buckets in batched queries, a scan keeps the word types
of indexed documents, `lm_tokens` skips Token objects."""
import difflib
import itertools
import math
import random
import sqlite3

import pytest

from unspin import index as index_module
from unspin.build.channel import channel_from_relations
from unspin.fingerprint import Fingerprinter, words_of
from unspin.index import Index, IndexDamaged
from unspin.lexicon import Channel
from unspin.scan import ScanTools, type_share, word_types
from unspin.text import lm_tokens, tokenize
from unspin.trace import MAX_PHRASE, SequenceMatcher, SubstitutionJudge, _align_block

PHRASES = [("despite", "in spite of"), ("said", "stated"), ("more", "a lot more"), ("start", "set out"),
           ("today", "these days"), ("plan", "scheme")]


@pytest.fixture(scope="module")
def phrase_channel():
    return channel_from_relations(PHRASES)


class ListsEverything(Channel):
    """The same channel, but claiming to list every span: the phrase search tries every pair."""

    def __contains__(self, observed) -> bool:
        return True


def test_phrase_search_skips_only_pairs_the_channel_cannot_explain(phrase_channel):
    everything = object.__new__(ListsEverything)
    everything.__dict__.update(phrase_channel.__dict__)
    fast = SubstitutionJudge(phrase_channel, Fingerprinter(phrase_channel).canonical)
    plain = SubstitutionJudge(everything, Fingerprinter(phrase_channel).canonical)
    vocab = "despite in spite of said stated more a lot start set out today these days plan scheme the was".split()
    rng = random.Random(7)
    blocks = [(tuple(rng.choices(vocab, k=rng.randint(1, 6))), tuple(rng.choices(vocab, k=rng.randint(1, 6))))
              for _ in range(400)]
    blocks += [(("in", "spite", "of", "the"), ("despite", "the")), (("set", "out", "today"), ("start", "these", "days"))]
    assert all(_align_block(fast, q, s) == _align_block(plain, q, s) for q, s in blocks)
    steps = _align_block(fast, ("in", "spite", "of", "the"), ("despite", "the"))
    assert steps[0] == ("sub_channel", 0, 3, 0, 1)          # the phrase is still found
    assert fast.block_steps(("set", "out"), ("start",)) == (("sub_channel", 0, 2, 0, 1),)


def plain_block_steps(judge: SubstitutionJudge, q: tuple, s: tuple) -> list:
    """The phrase search of a replaced block the plain way: every option of every cell as a list,
    the first best kept (`max`), each pair asked of `judge.explained`."""
    nq, ns = len(q), len(s)
    best = [[(0, 0)] * (ns + 1) for _ in range(nq + 1)]
    choice = [[None] * (ns + 1) for _ in range(nq + 1)]
    for i in range(nq, -1, -1):
        for j in range(ns, -1, -1):
            if i == nq and j == ns:
                continue
            opts = []
            if i < nq:
                opts.append(((best[i + 1][j][0], best[i + 1][j][1] - 1), ("ins", 1, 0)))
            if j < ns:
                opts.append(((best[i][j + 1][0], best[i][j + 1][1] - 1), ("del", 0, 1)))
            if i < nq and j < ns:
                opts.append(((best[i + 1][j + 1][0], best[i + 1][j + 1][1] - 1), ("sub", 1, 1)))
                for a in range(1, min(MAX_PHRASE, nq - i) + 1):
                    for b in range(1, min(MAX_PHRASE, ns - j) + 1):
                        if judge.explained(q[i:i + a], s[j:j + b]):
                            nxt = best[i + a][j + b]
                            opts.append(((nxt[0] + a, nxt[1] - 1), ("sub_channel", a, b)))
            best[i][j], choice[i][j] = max(opts, key=lambda o: o[0])
    steps, i, j = [], 0, 0
    while i < nq or j < ns:
        kind, a, b = choice[i][j]
        if steps and kind in ("ins", "del") and steps[-1][0] == kind:
            steps[-1] = (kind, steps[-1][1], i + a, steps[-1][3], j + b)
        else:
            steps.append((kind, i, i + a, j, j + b))
        i, j = i + a, j + b
    return steps


def test_block_search_equals_the_plain_search(phrase_channel):
    judge = SubstitutionJudge(phrase_channel, Fingerprinter(phrase_channel).canonical)
    vocab = ("despite in spite of said stated more a lot start set out today these days plan scheme the was 40 "
             "1990").split()
    rng = random.Random(11)
    blocks = [(tuple(rng.choices(vocab, k=rng.randint(1, 8))), tuple(rng.choices(vocab, k=rng.randint(1, 8))))
              for _ in range(600)]
    for q, s in blocks:
        if len(q) > 1 or len(s) > 1:  # a 1-by-1 block takes the short way, checked below
            assert _align_block(judge, q, s) == plain_block_steps(judge, q, s), (q, s)
    assert _align_block(judge, ("stated",), ("said",)) == [("sub_channel", 0, 1, 0, 1)]
    assert _align_block(judge, ("the",), ("a",)) == [("sub", 0, 1, 0, 1)]        # function words: no credit
    assert _align_block(judge, ("40",), ("1990",)) == [("sub", 0, 1, 0, 1)]       # nor numbers


def test_compiled_matcher_finds_difflibs_blocks():
    assert SequenceMatcher.__module__.startswith("cydifflib")  # a dependency: else this compares difflib with itself
    rng = random.Random(5)
    vocab = [f"w{k}" for k in range(30)]
    for _ in range(300):
        a = rng.choices(vocab, k=rng.randint(0, 60))
        b = [w if rng.random() > 0.3 else rng.choice(vocab) for w in a] + rng.choices(vocab, k=rng.randint(0, 5))
        if rng.random() < 0.1:
            rng.shuffle(b)
        ours, plain = SequenceMatcher(None, a, b, autojunk=False), difflib.SequenceMatcher(None, a, b, autojunk=False)
        assert ours.get_opcodes() == plain.get_opcodes()
        assert [tuple(m) for m in ours.get_matching_blocks()] == [tuple(m) for m in plain.get_matching_blocks()]


TEXTS = [
    "The harbour board said on Monday that the ferry to Kellan Island would stop in 2031.",
    "The harbour board stated on Monday that the ferry to Kellan Island would halt in 2031.",
    "A choir from Bexmoor sang carols at the station for 40 minutes before the first train left.",
    "Volunteers in Bexmoor counted 40 owls in the old quarry during a cold night in January.",
]


@pytest.fixture()
def small_index(tmp_path, phrase_channel):
    path = tmp_path / "refs.sqlite"
    with Index(str(path), channel=phrase_channel) as idx:
        idx.add([{"id": f"t{i}", "text": t} for i, t in enumerate(TEXTS)])
    return path


def per_key_candidates(idx: Index, keys, limit: int, max_bucket: int):
    """`Index.candidates_of_keys` the plain way: one query per key (what the batched queries replace)."""
    db = sqlite3.connect(idx.path)
    band_hits, term_hits, term_score = {}, {}, {}
    n_docs = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
    for b, h in keys:
        rows = db.execute("SELECT doc FROM band WHERE band_no=? AND hash=? LIMIT ?", (b, h, max_bucket + 1)).fetchall()
        if len(rows) > max_bucket:
            continue
        if b == index_module.TERM_BAND:
            idf = math.log(1.0 + (n_docs - len(rows) + 0.5) / (len(rows) + 0.5))
            for (d,) in rows:
                term_hits[d] = term_hits.get(d, 0) + 1
                term_score[d] = term_score.get(d, 0.0) + idf
        else:
            for (d,) in rows:
                band_hits[d] = band_hits.get(d, 0) + 1
    db.close()
    by_bands = sorted(band_hits, key=lambda d: (-band_hits[d], d))[:limit]
    by_terms = sorted(term_score, key=lambda d: (-term_score[d], d))[:limit]
    merged = []
    for pair in itertools.zip_longest(by_bands, by_terms):
        merged.extend(d for d in pair if d is not None and d not in merged)
    return [(d, band_hits.get(d, 0) + term_hits.get(d, 0)) for d in merged[:limit]]


@pytest.mark.parametrize("keys_per_query", [500, 3])
@pytest.mark.parametrize("max_bucket", [2000, 1])
def test_batched_bucket_queries_equal_one_query_per_key(small_index, phrase_channel, monkeypatch,
                                                        keys_per_query, max_bucket):
    monkeypatch.setattr(index_module, "KEYS_PER_QUERY", keys_per_query)
    with Index(str(small_index), channel=phrase_channel, create=False) as idx:
        for text in TEXTS:
            keys, _ = idx.fingerprinter.band_keys(text)
            got = idx.candidates_of_keys(keys, limit=10, max_bucket=max_bucket)
            assert got == per_key_candidates(idx, keys, 10, max_bucket)
        assert idx.candidates_of_keys([], limit=10) == []
    if max_bucket == 1:  # the Bexmoor texts share the term "bexmoor": a bucket of two, skipped
        assert got != per_key_candidates(idx, keys, 10, 2000)


def test_damaged_band_row_is_a_clear_error(small_index, phrase_channel):
    db = sqlite3.connect(small_index)
    db.execute("UPDATE band SET doc='not a number' WHERE (band_no, hash, doc) = "
               "(SELECT band_no, hash, doc FROM band WHERE band_no=? AND doc=1 LIMIT 1)", (index_module.TERM_BAND,))
    db.commit()
    db.close()
    with Index(str(small_index), channel=phrase_channel, create=False) as idx:
        with pytest.raises(IndexDamaged, match="damaged"):
            idx.candidates(TEXTS[0])


def test_scan_keeps_indexed_word_types_within_its_bound(monkeypatch):
    from unspin import scan as scan_module

    monkeypatch.setattr(scan_module, "INDEXED_TYPES_KEPT", 2)
    tools = ScanTools(engine=None, fingerprinter=None, judge=None)
    for i, text in enumerate(TEXTS):
        assert tools.types_of_indexed(f"t{i}", text) == word_types(words_of(text))
    assert list(tools.indexed_types) == ["t2", "t3"]                    # the oldest went first
    assert tools.types_of_indexed("t3", "ignored: kept from before") == word_types(words_of(TEXTS[3]))
    assert type_share(word_types(words_of(TEXTS[0])), word_types(words_of(TEXTS[1]))) == pytest.approx(13 / 15)  # said/stated, stop/halt


@pytest.mark.parametrize("text", ["The U. N. sent 4, 000 “troops”.", "Don’t stop—it's 3:30 p.m. now…", "",
                                  "said that” the plan", "Ünïcode wörds, 1st and 22nd_place!"])
def test_lm_tokens_are_the_normalized_tokens(text):
    from unspin.text import repair_rewriter_marks

    assert lm_tokens(text) == [t.norm for t in tokenize(repair_rewriter_marks(text))]
