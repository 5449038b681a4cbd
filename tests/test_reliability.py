"""Input that must never crash a batch or lose data (the reliability issue)."""
import json

from unspin.cli import main


def test_lone_surrogate_in_a_jsonl_row_is_cleaned_and_later_rows_survive(tmp_path, models, capsys):
    rows = tmp_path / "rows.jsonl"
    # json.dumps writes a lone surrogate as the escape \ud800, as other tools do.
    rows.write_text(json.dumps({"id": "odd\ud800", "text": "The police \ud800 mentioned the road was closed."}) + "\n"
                    + json.dumps({"id": 2, "text": "The minister mentioned the plan would cost extra than expected."}) + "\n",
                    encoding="utf-8")
    # --min-confidence 0.2: the tiny test models are unsure of "extra" -> "more".
    assert main(["check", "--jsonl", str(rows), "--min-confidence", "0.2", *models]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in out] == ["odd\ud800", 2]
    assert "\ufffd" in out[0]["restored"] and "error" not in out[0]
    assert out[1]["restored"] == "The minister said the plan would cost more than expected."


def test_every_per_engine_cache_is_bounded(tiny_lm, tiny_channel):
    from unspin.decode import Decoder
    from unspin.fingerprint import Fingerprinter

    decoder = Decoder(tiny_lm, tiny_channel)
    fingerprinter = Fingerprinter(tiny_channel)
    caches = [decoder._key_candidates, decoder._unigram, tiny_channel._candidates_at,
              fingerprinter.canonical, fingerprinter.top_candidates]
    for cache in caches:
        assert cache.cache_info().maxsize is not None
    decoder.decode([])  # and they still work
    assert fingerprinter.canonical("said") == fingerprinter.canonical("said")


# ---- shared: made-up reference paragraphs (written for these tests) -----------------------
import math  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402

import pytest  # noqa: E402

from unspin.detect import Calibration, Engine  # noqa: E402
from unspin.index import Index, IndexDamaged, check_index  # noqa: E402
from unspin.inputs import InputError  # noqa: E402
from unspin import trace as trace_module  # noqa: E402
from unspin.trace import trace  # noqa: E402
from unspin.fingerprint import words_at  # noqa: E402

PARAS = [
    "The harbour board said on Thursday that the new ferry terminal at Quillon Bay would open in the spring. "
    "It was one of the largest projects in the history of the town, and the work cost more than the council "
    "had planned. Inspectors found that the old pier could not hold the weight of the new ships.",
    "A group of students from the technical college in Marrowby built a small boat that runs on sunlight. "
    "They sailed it across the lake in the summer and said that it was the first of its kind in the region. "
    "The college will show the boat at a fair in the capital next month.",
    "In the middle of the night a storm swept over the hills to the north of the city and tore the roofs "
    "from several barns. Farmers in the valley said that they had not seen such winds in the last twenty "
    "years, and many of them spent the morning searching for their sheep.",
    "The old cinema on Bell Street will close at the end of the year after almost a century in business. "
    "Its owner told the local paper that the building needs repairs he cannot afford, and that the number "
    "of visitors has fallen every year since the new shopping centre opened.",
    "Doctors at the county hospital have started a program that sends nurses to the homes of elderly "
    "patients after an operation. The visits are part of a plan to cut the number of people who return to "
    "the hospital within a month, which rose sharply during the winter.",
    "The national archive has put thousands of letters written by soldiers during the war on its website. "
    "Many of the letters were given to the archive by the families of the men, and some of them describe "
    "life in the trenches in great detail, with drawings and small maps.",
    "A rare bird with bright orange wings was seen on the coast of Tarrow Island for the first time in "
    "fifty years. Volunteers who count birds on the island every spring said that at least three pairs "
    "had built nests on the cliffs, which are now closed to walkers.",
    "The city will plant a thousand trees along the main roads over the next two years to give more shade "
    "in the hot months. The mayor said that the trees would also help to clean the air, and that residents "
    "could ask for a tree to be planted in front of their homes.",
]
# Short queries that share only function words and a word or two with PARAS[0] and PARAS[4].
SHORT_UNRELATED = ["It was one of the first of the kind in the history of the region.",
                   "The number of people who live in the valley has fallen in the last years."]
# The first sentence of PARAS[0], a third of its words swapped for synonyms by hand.
SHORT_SPUN = ("The harbor board stated on Thursday that the fresh ferry terminal at Quillon Bay would unfold in "
              "the spring.")


def _many_docs(n: int):
    towns = ["Arnby", "Belcourt", "Crayle", "Dunholm", "Eskerby", "Fallow", "Grisedale", "Hartwell"]
    goods = ["apples", "bricks", "candles", "ropes", "barrels of oil", "bolts of cloth", "sacks of grain"]
    for i in range(n):
        yield {"id": f"m{i}", "text": f"Ledger {i}: the carters of {towns[i % 8]} brought {i * 13 % 501} "
                                      f"{goods[i % 7]} to the market on day {i % 29}, and the inspectors "
                                      f"turned back {i % 11} of them before noon because the seals were broken."}


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel-idx") / "refs.sqlite"
    with Index(path) as idx:
        idx.add({"id": f"p{i}", "text": t} for i, t in enumerate(PARAS))
    return path


@pytest.fixture(scope="module")
def big_index(tmp_path_factory):
    """About 200 pages: room to damage some of them."""
    path = tmp_path_factory.mktemp("rel-big") / "big.sqlite"
    with Index(path) as idx:
        idx.add(_many_docs(150))
        idx.add({"id": f"p{i}", "text": t} for i, t in enumerate(PARAS))
    return path


def _copy(src, tmp_path, name="i.sqlite"):
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


def _overwrite(path, start_frac: float, end_frac: float, seed: int = 0, page: int = 4096) -> None:
    """Overwrite whole pages from start_frac to end_frac of the file with random bytes."""
    import random

    data = bytearray(path.read_bytes())
    n_pages = len(data) // page
    first, last = max(1, int(n_pages * start_frac)), max(2, int(n_pages * end_frac))
    rng = random.Random(seed)
    for p in range(first, last):
        data[p * page:(p + 1) * page] = bytes(rng.randrange(256) for _ in range(page))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def engine(tiny_lm, tiny_channel):
    return Engine(tiny_lm, tiny_channel, Calibration.uncalibrated())


# ---- lone surrogates through the Python API (item 2) ---------------------------------------
def test_check_cleans_lone_surrogates_and_says_so(engine):
    text = "The police \ud800 mentioned the road was closed."
    result = engine.check(text)
    assert result.text == text.replace("\ud800", "\ufffd") and len(result.text) == len(text)
    assert any("surrogate" in w for w in result.warnings)
    for s in result.spans:
        assert result.text[s.start:s.end] == s.text
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # writable as UTF-8
    assert "\ufffd" in engine.restore(text).text
    clean = engine.check("The police mentioned the road was closed.")
    assert not any("surrogate" in w for w in clean.warnings)
    with pytest.raises(TypeError, match="str"):
        engine.check(b"The police mentioned the road was closed.")


def test_index_add_stores_text_with_surrogates_cleaned(tmp_path):
    with Index(tmp_path / "s.sqlite") as idx:
        assert idx.add([{"id": "s1", "text": PARAS[1].replace("sunlight", "sun\udc80light"),
                         "note": "odd \ud801 byte"}]) == 1
        doc = idx.get("s1")
        assert doc["text"] == PARAS[1].replace("sunlight", "sun\ufffdlight")
        assert doc["note"] == "odd \ud801 byte"  # metadata comes back exactly as given
        assert idx.trace(PARAS[1].replace("boat", "b\udfffoat"))[0].doc_id == "s1"
        with pytest.raises(InputError, match="surrogate"):
            idx.add([{"id": "bad\ud800", "text": PARAS[2]}])
        assert len(idx) == 1


# ---- Python Index foot-guns (item 4) ---------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 42, 3.5, b"refs.sqlite", ["refs.sqlite"]])
def test_index_wants_a_path(bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"expected a path \(str or os.PathLike\)"):
        Index(bad)
    assert list(tmp_path.iterdir()) == []  # no file named None or 42
    with pytest.raises(InputError, match="empty"):
        Index("")


def test_remove_takes_one_id_or_an_iterable_of_ids(tmp_path):
    with Index(tmp_path / "r.sqlite") as idx:
        idx.add([{"id": i, "text": PARAS[n]} for n, i in enumerate(["a", "b", "c", "abc"])])
        assert idx.remove("abc") == 1  # one id, not its characters
        assert "abc" not in idx and {"a", "b", "c"} <= {d for d in ("a", "b", "c") if d in idx}
        assert idx.remove(("a", "nope")) == 1 and "a" not in idx
        for bad in (1, [1], b"b", {"id": "b"}, None):
            with pytest.raises(TypeError):
                idx.remove(bad)
        assert len(idx) == 2


def test_ids_are_strings(tmp_path):
    with Index(tmp_path / "ids.sqlite") as idx:
        with pytest.raises(TypeError, match=r"ids are strings: give '1'"):
            idx.add([{"id": 1, "text": PARAS[0]}])
        idx.add([{"id": "1", "text": PARAS[0]}])
        for bad in (1, 1.0, None, True):
            with pytest.raises(TypeError):
                idx.get(bad)
            with pytest.raises(TypeError):
                bad in idx  # noqa: B015
        assert idx.get("1")["text"] == PARAS[0] and len(idx) == 1
        with pytest.raises(InputError, match="empty"):
            idx.add([{"id": "  ", "text": PARAS[1]}])


def test_add_refuses_what_is_not_a_document(tmp_path):
    with Index(tmp_path / "d.sqlite") as idx:
        for bad, err in ((["just text"], TypeError), ([("x", "y")], TypeError), ([{"id": "x", "text": 5}], TypeError),
                         ([{"id": "x", "text": None}], TypeError), ([{"id": "x"}], InputError),
                         ([{"text": PARAS[0]}], InputError), ([{"id": "x", "text": "t", "m": {(1, 2): 3}}], TypeError)):
            with pytest.raises(err, match="document 1"):
                idx.add(bad)
        with pytest.raises(TypeError, match="iterable of documents"):
            idx.add({"id": "x", "text": PARAS[0]})
        with pytest.raises(TypeError, match="progress"):
            idx.add([], progress=3)
        assert len(idx) == 0
        # the documents before a bad one are written, the bad one and those after are not
        with pytest.raises(TypeError, match=r"document 3 \(id 'c'\)"):
            idx.add([{"id": "a", "text": PARAS[0]}, {"id": "b", "text": PARAS[1]}, {"id": "c", "text": 7},
                     {"id": "d", "text": PARAS[2]}])
        assert len(idx) == 2 and "b" in idx and "d" not in idx


def test_trace_checks_its_arguments(small_index):
    with Index(small_index, create=False) as idx:
        for kwargs, err in (({"top": 0}, ValueError), ({"top": 1.5}, TypeError), ({"top": True}, TypeError),
                            ({"min_coverage": 1.5}, ValueError), ({"min_coverage": -0.1}, ValueError),
                            ({"min_coverage": math.nan}, ValueError), ({"min_coverage": "0.5"}, TypeError),
                            ({"verify_n": 0}, ValueError)):
            with pytest.raises(err):
                trace(idx, PARAS[0], **kwargs)
            with pytest.raises(err):
                idx.trace(PARAS[0], **kwargs)
        with pytest.raises(TypeError, match="str"):
            trace(idx, None)
        with pytest.raises(TypeError, match="str"):
            idx.trace(b"bytes")
        assert trace(idx, PARAS[3], top=1, min_coverage=1)[0].doc_id == "p3"
        assert trace(idx, PARAS[3], min_coverage=0.0)[0].doc_id == "p3"


def test_a_closed_index_says_so(small_index):
    idx = Index(small_index, create=False)
    idx.close()
    idx.close()  # idempotent
    for use in (lambda: len(idx), lambda: idx.get("p1"), lambda: idx.trace(PARAS[1]), lambda: idx.stats(),
                lambda: idx.add([{"id": "x", "text": PARAS[1]}]), lambda: "p1" in idx):
        with pytest.raises(ValueError, match="closed"):
            use()


def test_another_sqlite_file_is_not_taken_for_an_index(tmp_path):
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    before = other.read_bytes()
    with pytest.raises(InputError, match="not an unspin index"):
        Index(other)
    assert other.read_bytes() == before  # no unspin tables written into it


# ---- short trace queries (item 6) -----------------------------------------------------------
def test_short_queries_are_unreliable_and_need_more_evidence(small_index, monkeypatch):
    with Index(small_index, create=False) as idx:
        for q in SHORT_UNRELATED:
            assert trace(idx, q) == [], q
        spun = trace(idx, SHORT_SPUN)
        assert spun and spun[0].doc_id == "p0" and spun[0].reliable is False
        assert spun[0].to_dict()["reliable"] is False
        long_q = trace(idx, PARAS[5])
        assert long_q[0].doc_id == "p5" and long_q[0].reliable is True and long_q[0].to_dict()["reliable"] is True
        # counting every chance-aligned word (no segment rule), these unrelated queries align
        # with some paragraph well enough for the plain coverage rule; the short-query rule refuses
        monkeypatch.setattr(trace_module, "SEGMENT_MIN_ALIGNED", 1)
        monkeypatch.setattr(trace_module, "SEGMENT_MIN_DENSITY", 0.0)
        monkeypatch.setattr(trace_module, "SEGMENT_GAP", 1000)
        for q in SHORT_UNRELATED:
            qw = words_at(q)
            best = max((trace_module.verify(idx.judge, qw, words_at(p), f"p{i}") for i, p in enumerate(PARAS)),
                       key=lambda m: m.coverage)
            assert best.coverage >= trace_module.MIN_COVERAGE, q
            assert not trace_module.accepts(best, len(qw)), q


def test_trace_json_rows_say_whether_a_match_is_reliable(small_index, tmp_path, capsys):
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "short", "text": SHORT_SPUN}) + "\n" + json.dumps({"id": "long", "text": PARAS[6]})
                 + "\n" + json.dumps({"id": "odd", "text": SHORT_UNRELATED[0]}) + "\n")
    assert main(["trace", "--index", str(small_index), "--jsonl", str(q)]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["short"]["matches"][0]["reliable"] is False and rows["long"]["matches"][0]["reliable"] is True
    assert rows["odd"]["matches"] == []


# ---- damaged index files (item 10) ------------------------------------------------------------
def _run(argv, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_damaged_pages_give_a_clear_message(big_index, tmp_path, capsys):
    path = _copy(big_index, tmp_path)
    _overwrite(path, 0.1, 0.95)
    for argv in (["index", "stats", "--index", str(path)], ["trace", "--index", str(path), "-"]):
        import io
        import sys

        sys_stdin = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(PARAS[0].encode()))
        try:
            rc, out, err = _run(argv, capsys)
        finally:
            sys.stdin = sys_stdin
        assert rc == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "damaged" in err and "index check" in err
        assert "internal error" not in err and "Traceback" not in err
    with pytest.raises(IndexDamaged):
        with Index(path, create=False) as idx:
            idx.stats()
    rc, out, err = _run(["index", "check", "--index", str(path)], capsys)
    report = json.loads(out)
    assert rc == 2 and report["ok"] is False and any(p.startswith("sqlite:") for p in report["problems"])
    assert "--repair" in err


def test_repair_copies_the_readable_documents(big_index, tmp_path, capsys):
    path = _copy(big_index, tmp_path)
    with Index(path, create=False) as idx:
        total = len(idx)
    _overwrite(path, 0.45, 0.5, seed=3)
    assert main(["index", "check", "--index", str(path)]) == 2
    capsys.readouterr()
    rc, out, err = _run(["index", "check", "--index", str(path), "--repair"], capsys)
    report = json.loads(out)
    assert rc == 0 and report["ok"] is True and report["problems"] == [] and report["found"]
    assert any("copied" in r for r in report["repaired"])
    assert (tmp_path / "i.sqlite.damaged").exists()
    assert report["lost_ids"] is None or report["documents"] + len(report["lost_ids"]) == total
    assert 0 < report["documents"] <= total
    assert check_index(path)["ok"] is True
    with Index(path, create=False) as idx:
        assert len(idx) == report["documents"]
        kept = [f"p{i}" for i in range(len(PARAS)) if f"p{i}" in idx]
        for doc_id in kept:
            assert idx.trace(PARAS[int(doc_id[1:])])[0].doc_id == doc_id
        idx.add([{"id": "new", "text": PARAS[0] + " A late addition."}])  # writable again


def test_check_and_repair_unspin_consistency(big_index, tmp_path, capsys):
    path = _copy(big_index, tmp_path)
    assert check_index(path) == {"path": str(path), "ok": True, "problems": [], "documents": 158}
    with sqlite3.connect(path) as db:
        p2 = db.execute("SELECT rowid FROM docs WHERE id='p2'").fetchone()[0]
        p3 = db.execute("SELECT rowid FROM docs WHERE id='p3'").fetchone()[0]
        db.execute("DELETE FROM band WHERE doc=?", (p2,))                       # missing bands
        db.execute("INSERT INTO band VALUES (5, 123456789, 999999)")           # an orphan
        db.execute("UPDATE docs SET bands=x'0102' WHERE rowid=?", (p3,))       # unreadable keys
        db.execute("UPDATE docs SET meta='not json' WHERE id='m7'")
    report = check_index(path)
    assert report["ok"] is False
    text = " ".join(report["problems"])
    assert "missing from the band table" in text and "orphans" in text and "'p3'" in text and "'m7'" in text
    assert main(["index", "check", "--index", str(path)]) == 2
    capsys.readouterr()
    rc, out, _ = _run(["index", "check", "--index", str(path), "--repair"], capsys)
    report = json.loads(out)
    assert rc == 0 and report["ok"] is True and len(report["repaired"]) >= 4
    assert not (tmp_path / "i.sqlite.damaged").exists()  # fixed in place, no copy needed
    with Index(path, create=False) as idx:
        assert idx.trace(PARAS[2])[0].doc_id == "p2" and idx.trace(PARAS[3])[0].doc_id == "p3"
        assert idx.get("m7")["text"].startswith("Ledger 7")
        assert idx.stats()["documents"] == 158


def test_repair_fingerprints_again_an_index_of_other_settings(small_index, tmp_path):
    path = _copy(small_index, tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='[[\"imm\", 3, 64, 2]]' WHERE key='kinds'")
    with pytest.raises(InputError, match="rebuild"):
        Index(path, create=False)
    assert "fingerprint" in " ".join(check_index(path)["problems"])
    report = check_index(path, repair=True)
    assert report["ok"] is True and any("fingerprinted 8" in r for r in report["repaired"])
    with Index(path, create=False) as idx:
        assert idx.trace(PARAS[4])[0].doc_id == "p4"


def test_files_that_are_no_index_are_reported(tmp_path, capsys):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\x00garbage" * 600)
    rc, out, err = _run(["index", "check", "--index", str(junk)], capsys)
    assert rc == 2 and "not an SQLite database" in json.loads(out)["problems"][0]
    rc, out, err = _run(["index", "check", "--index", str(junk), "--repair"], capsys)
    assert rc == 2 and "beyond repair" in " ".join(json.loads(out)["problems"])
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    rc, out, err = _run(["index", "check", "--index", str(other), "--repair"], capsys)
    assert rc == 2 and "not an unspin index" in " ".join(json.loads(out)["problems"])
    rc, out, err = _run(["index", "check", "--index", str(tmp_path / "absent.sqlite")], capsys)
    assert rc == 2 and "no such index" in err and not (tmp_path / "absent.sqlite").exists()
    assert "Traceback" not in err


def test_a_wholly_damaged_file_is_beyond_repair(big_index, tmp_path, capsys):
    path = _copy(big_index, tmp_path)
    data = bytearray(path.read_bytes())
    data[100:] = bytes(len(data) - 100)  # header kept, every page zeroed
    path.write_bytes(bytes(data))
    rc, out, err = _run(["index", "check", "--index", str(path), "--repair"], capsys)
    report = json.loads(out)
    assert rc == 2 and report["ok"] is False and "beyond repair" in report["problems"][-1]
    assert "internal error" not in err


# ---- crashes the fuzz run found ---------------------------------------------------------------
def test_parquet_string_column_with_invalid_utf8_is_a_bad_row(tmp_path, capsys):
    """Found by the fuzz run (bench_reliability): pyarrow raised UnicodeDecodeError for the whole
    batch, and `index add` failed with an internal error."""
    np = pytest.importorskip("numpy")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    def strings(values):  # a string column holding bytes that are not UTF-8 (pyarrow does not check)
        offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
        return pa.Array.from_buffers(pa.string(), len(values),
                                     [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])

    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"id": strings([b"a", b"b", b"c"]),
                             "text": strings([PARAS[0].encode(), b"bad \xff bytes", PARAS[1].encode()])}), path)
    idx = tmp_path / "i.sqlite"
    assert main(["index", "add", "--index", str(idx), str(path), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["added"] == 2 and json.loads(captured.out)["skipped_bad"] == 1
    assert f"{path}:2: not valid UTF-8" in captured.err


def test_rows_whose_text_or_id_is_not_text_are_found_and_repaired(small_index, tmp_path):
    """Damage inside a record: bytes that are not UTF-8 in a text, an id turned into a blob."""
    path = _copy(small_index, tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE docs SET text=CAST(x'54686520666572727920ff6c656674' AS TEXT) WHERE id='p1'")
        db.execute("UPDATE docs SET id=CAST(id AS BLOB) WHERE id='p2'")
    with Index(path, create=False) as idx:
        with pytest.raises(IndexDamaged, match="damaged"):
            idx.get("p1")
        with pytest.raises(IndexDamaged):
            for q in PARAS:  # p1's old bands still lead to it
                idx.trace(q)
    report = check_index(path)
    problems = " ".join(report["problems"])
    assert not report["ok"] and "'p1'" in problems and "id is not valid text" in problems
    report = check_index(path, repair=True)
    assert report["ok"] is True, report
    with Index(path, create=False) as idx:
        assert idx.get("p1")["text"] == "The ferry \ufffdleft" and len(idx) == len(PARAS) - 1
        assert idx.trace(PARAS[5])[0].doc_id == "p5"
        assert [m.doc_id for m in idx.trace(PARAS[1])] != ["p1"]  # its old bands are gone


def test_damaged_schema_text_is_reported_not_a_crash(small_index, tmp_path, capsys):
    """Found by the fuzz run: SQLite's message quotes the damaged bytes of the schema, and Python
    raised UnicodeDecodeError (an internal error) instead of an SQLite error."""
    path = _copy(small_index, tmp_path)
    data = bytearray(path.read_bytes())
    data[data.find(b"CREATE TABLE docs") + 7] = 0x81
    path.write_bytes(bytes(data))
    for argv in (["index", "stats", "--index", str(path)], ["index", "remove", "--index", str(path), "p1"]):
        rc, _out, err = _run(argv, capsys)
        assert rc == 2 and "damaged" in err and "internal error" not in err, err
    rc, out, err = _run(["index", "check", "--index", str(path), "--repair"], capsys)
    report = json.loads(out)
    assert rc == 2 and "schema" in report["problems"][0] and "beyond repair" in report["problems"][-1]


@pytest.mark.parametrize("hits", [[(344837, 1663, 17)]])
def test_damage_the_fuzz_run_found(hits, tmp_path):
    """Damage found by the fuzz run of bench_reliability (the id index then held values that are not
    ids, and listing the lost ids raised TypeError): every operation and the repair still behave."""
    from unspin.build.bench_reliability import _exercise_damaged_index, _index_seed

    try:
        _exercise_damaged_index(_index_seed(), hits, str(tmp_path))
    except InputError:
        pass


def test_a_time_budget_judges_what_it_reached_and_says_so(tiny_lm, tiny_channel):
    from unspin.detect import Calibration, Engine

    text = " ".join(["The police mentioned the road was closed."] * 30)
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), time_budget_s=1e-9)
    result = engine.check(text)
    assert any("time budget" in w for w in result.warnings) and result.reliable is False
    assert result.spans and all(s.end <= len("The police mentioned the road was closed.") for s in result.spans)
    assert result.n_words == 30 * 7
    full = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated()).check(text)
    assert not any("time budget" in w for w in full.warnings) and len(full.spans) > len(result.spans)


def test_time_budget_option_is_validated(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text("The police mentioned the road was closed.", encoding="utf-8")
    assert main(["check", str(f), "--time-budget", "-1", *models]) == 2
    assert "0 or more" in capsys.readouterr().err
    assert main(["check", str(f), "--time-budget", "0", *models]) == 0
