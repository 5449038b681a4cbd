"""trace: the SQLite index (round trip, crash safety, bad input) and finding the source of a spun copy."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unspin.cli import main
from unspin.index import Index
from unspin.inputs import InputError
from unspin.report import render_alignment_html, render_alignment_text
from unspin.trace import trace


def index_main(argv):
    return main(["index", *argv])


def trace_main(argv):
    return main(["trace", *argv])

REPO = Path(__file__).resolve().parent.parent

# Made-up reference documents (written for this test).
DOCS = [
    "The city council said on Tuesday that the new bridge over the Marlow River would open in March. "
    "Engineers found that the old structure could not carry heavy trucks, and the repairs cost more than "
    "12 million dollars. Mayor Ellen Park told reporters that the project was finished ahead of schedule.",
    "A small bakery in Northfield has won a national prize for its rye bread. The owners, who opened the shop "
    "in 2009, said they still bake every loaf by hand before dawn. Customers often wait in a long line outside.",
    "Heavy rain flooded several roads in the eastern part of the county on Sunday night. Police closed the "
    "highway near Dunmore for six hours while crews pumped water away. No one was hurt, officials said.",
    "The school board voted to extend the school day by thirty minutes starting next autumn. Teachers asked "
    "for more time to plan lessons, and parents were divided about the change at a busy public meeting.",
    "Scientists at the Halvard Institute reported that a rare frog, thought to be extinct, was seen again in "
    "a mountain forest. The team recorded its call at night and counted at least 40 adults near a stream.",
    "The football club announced that its captain will miss the rest of the season after knee surgery. "
    "The coach said the young defender had been the best player on the team for two years.",
    "Prices at the farmers market rose sharply this summer because a late frost damaged many apple trees. "
    "Growers in the valley expect a smaller harvest, but they hope the pears will do better.",
    "A fire broke out in an empty warehouse near the port early on Friday. Firefighters needed four hours to "
    "control the blaze, and the cause is still under investigation by the authorities.",
    "The museum will display a collection of old maps from the seventeenth century. Some of the maps show "
    "islands that do not exist, drawn by sailors who believed rumours they heard in distant harbours.",
    "Local volunteers planted two thousand trees along the river bank to stop the soil from washing away. "
    "The mayor thanked them and promised that the town would pay for water and tools next spring.",
    "The airline cancelled dozens of flights after a computer failure stopped the check-in system at "
    "Westbury airport. Passengers slept on the floor, and the company apologised in a short statement.",
    "A new study suggests that people who walk for twenty minutes a day sleep better and feel less tired. "
    "The researchers followed 300 adults for one year and asked them to keep a simple diary.",
    "The library is moving to a larger building in the centre of town. Staff will pack nearly 80,000 books "
    "over the winter, and the reading rooms will reopen in April with longer hours.",
    "Workers at the car plant agreed to a new contract after three weeks of talks. The union said the deal "
    "raises wages by four percent and protects jobs until the end of the decade.",
    "A storm knocked down power lines across the northern villages, leaving thousands of homes without "
    "electricity. Repair teams worked through the night, and most houses had power again by noon.",
    "The orchestra will tour five countries next year, playing music by young composers from the region. "
    "Tickets for the first concert in Lisbon sold out within an hour, the organisers said.",
    "Farmers complained that the new rules on water use are too strict during a dry summer. The minister "
    "promised to meet them next week and to review the limits before the harvest begins.",
    "A famous chef opened a restaurant in an old railway station, serving simple dishes made with local fish "
    "and vegetables. The dining room keeps the original clock and the wooden benches.",
    "The hospital hired forty new nurses to reduce waiting times in the emergency ward. Patients had waited "
    "up to nine hours last winter, and the director called the situation unacceptable.",
    "Archaeologists digging near the coast found the remains of a Roman villa with a painted floor. The "
    "excavation will continue until October, when the site will be covered again to protect it.",
]

# DOCS[2] spun by hand: about a third of the words swapped for thesaurus synonyms.
SPUN_2 = ("Weighty rainfall inundated numerous roads in the eastern portion of the county on Sunday evening. "
          "Law enforcement shut the motorway near Dunmore for six hours while teams pumped water away. "
          "No one was injured, authorities stated.")

UNRELATED = ("My grandmother kept a garden full of tomatoes and beans, and every August she gave baskets of "
             "them to the neighbours. She never wrote down a recipe but remembered all of them.")


@pytest.fixture(scope="module")
def index_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("idx") / "refs.sqlite"
    with Index(path) as idx:
        idx.add(({"id": f"doc{i}", "text": t, "n": i} for i, t in enumerate(DOCS)))
    return path


def test_round_trip_add_replace_remove_stats(tmp_path):
    path = tmp_path / "i.sqlite"
    with Index(path) as idx:
        assert idx.add([{"id": "a", "text": DOCS[0], "lang": "en"}, {"id": "b", "text": DOCS[1]}]) == 2
        assert len(idx) == 2
        assert idx.get("a") == {"id": "a", "text": DOCS[0], "lang": "en"}
        idx.add([{"id": "a", "text": DOCS[3]}])  # replace
        assert len(idx) == 2 and idx.get("a")["text"] == DOCS[3] and "lang" not in idx.get("a")
        assert idx.trace(DOCS[0]) == []  # its old bands are gone
        assert idx.trace(DOCS[3])[0].doc_id == "a"
        # duplicate ids within one add: the last wins; empty text is skipped and counted
        idx.add([{"id": "c", "text": DOCS[4]}, {"id": "d", "text": "  "}, {"id": "c", "text": DOCS[5]}])
        assert idx.last_skipped == 1 and idx.get("c")["text"] == DOCS[5] and idx.get("d") is None
        st = idx.stats()
        assert st["documents"] == 3 and st["words"] > 50 and st["size_bytes"] > 0
        assert idx.remove(["b", "nope"]) == 1
        assert len(idx) == 2 and idx.get("b") is None
    with Index(path, create=False) as idx:  # persistent
        assert len(idx) == 2 and "c" in idx
        band_rows = idx.stats()["band_rows"]
        idx.remove(["a", "c"])
        assert idx.stats()["band_rows"] == 0 < band_rows


def test_trace_finds_source_of_hand_spun_copy(index_path):
    with Index(index_path, create=False) as idx:
        matches = trace(idx, SPUN_2, top=3)
        assert matches and matches[0].doc_id == "doc2"
        m = matches[0]
        assert 0.6 <= m.coverage <= 1 and 0 <= m.score <= 1
        ops = {op for op, _, _ in m.alignment}
        assert "same" in ops and "sub_channel" in ops
        assert ("sub_channel", "stated", "said") in m.alignment
        # the original itself matches perfectly
        exact = idx.trace(DOCS[7])[0]
        assert exact.doc_id == "doc7" and exact.coverage == 1.0
        assert trace(idx, UNRELATED) == []
        assert trace(idx, "") == []
        text = render_alignment_text(m)
        assert "doc2" in text and "stated" in text
        page = render_alignment_html(matches)
        assert page.startswith("<!doctype html>") and "sub_channel" in page and "Dunmore" in page


def test_cli_json_batch_contract(index_path, tmp_path, capsys):
    q = tmp_path / "q.jsonl"
    q.write_text("\n".join([json.dumps({"id": "spun", "text": SPUN_2}), json.dumps({"id": 7, "text": UNRELATED}),
                            "not json", json.dumps({"id": "x", "text": DOCS[11]})]) + "\n")
    assert trace_main(["--index", str(index_path), "--jsonl", str(q)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["spun", 7, None, "x"]
    assert rows[0]["matches"][0]["doc_id"] == "doc2"
    assert set(rows[0]["matches"][0]) == {"doc_id", "score", "coverage", "reliable", "segments"}
    assert isinstance(rows[0]["matches"][0]["score"], float)
    assert rows[1]["matches"] == [] and "error" in rows[2] and rows[3]["matches"][0]["doc_id"] == "doc11"
    f = tmp_path / "spun.txt"
    f.write_text(SPUN_2)
    assert trace_main(["--index", str(index_path), str(f), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["matches"][0]["doc_id"] == "doc2" and out["matches"][0]["alignment"]
    assert trace_main(["--index", str(index_path), str(f)]) == 0
    assert "doc2" in capsys.readouterr().out
    assert trace_main(["--index", str(index_path), str(f), "--format", "html"]) == 0
    assert "<html>" in capsys.readouterr().out


def test_cli_add_inputs(tmp_path, capsys):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text(DOCS[0])
    (folder / "sub" / "two.html").write_text(f"<html><body><article><p>{DOCS[1]}</p></article></body></html>")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "r1", "text": DOCS[2], "url": "http://x"}) + "\n"
                    + json.dumps({"id": "r2", "text": ""}) + "\n")
    idx = str(tmp_path / "i.sqlite")
    assert index_main(["add", "--index", idx, str(folder), str(rows), "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"added": 3, "skipped_empty": 1, "skipped_bad": 0, "documents": 3}
    with Index(idx) as ix:
        assert ix.get("one.txt") and ix.get("sub/two.html") and ix.get("r1")["url"] == "http://x"
    assert index_main(["stats", "--index", idx]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 3
    assert index_main(["remove", "--index", idx, "r1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"removed": 1, "documents": 2}


def test_cli_add_parquet(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": [DOCS[0], DOCS[1]], "lang": ["en", "en"]}), path)
    idx = str(tmp_path / "p.sqlite")
    assert index_main(["add", "--index", idx, str(path), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 2
    with Index(idx) as ix:
        assert ix.get("1")["text"] == DOCS[0] and ix.get("2")["lang"] == "en"
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"body": ["x"]}), bad)
    assert index_main(["add", "--index", idx, str(bad), "--no-progress"]) == 2
    assert "'id' and 'text'" in capsys.readouterr().err


def test_bad_inputs(tmp_path, capsys):
    idx = str(tmp_path / "i.sqlite")
    unknown = tmp_path / "docs.xml"
    unknown.write_text("<docs><doc id='1'>hello</doc></docs>\n")
    assert index_main(["add", "--index", idx, str(unknown)]) == 2
    assert "unknown input format" in capsys.readouterr().err
    assert index_main(["add", "--index", idx, str(tmp_path / "missing.jsonl")]) == 2
    assert not os.path.exists(idx)  # a failed run leaves no index file behind
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert index_main(["add", "--index", idx, str(bad), "--strict"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not os.path.exists(idx)
    with pytest.raises(InputError):
        Index("/proc/x.sqlite")
    with pytest.raises(InputError):
        Index(tmp_path / "no" / "such" / "dir" / "x.sqlite")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if not os.access(ro, os.W_OK):  # root can write anywhere
        with pytest.raises(InputError):
            Index(ro / "x.sqlite")
    os.chmod(ro, 0o700)
    assert index_main(["add", "--index", "/proc/x.sqlite", str(bad)]) == 2
    not_db = tmp_path / "notdb.sqlite"
    not_db.write_text("this is not a database " * 100)
    with pytest.raises(InputError):
        Index(not_db)
    assert index_main(["stats", "--index", str(tmp_path / "absent.sqlite")]) == 2
    assert not (tmp_path / "absent.sqlite").exists()
    assert trace_main(["--index", str(tmp_path / "absent.sqlite"), str(unknown)]) == 2
    assert trace_main(["--index", idx]) == 2
    with Index(idx) as ix:
        ix.add([{"id": "a", "text": DOCS[0]}])
    assert trace_main(["--index", idx, str(tmp_path / "nofile.txt")]) == 2
    assert trace_main(["--index", idx, "--jsonl", str(tmp_path / "nofile.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no such" in err
    with pytest.raises(InputError):
        with Index(idx) as ix:
            ix.add([{"text": "no id"}])
    # an index built with other fingerprint settings is refused, not silently mismatched
    with Index(idx) as ix:
        ix._db.execute("UPDATE meta SET value='[]' WHERE key='kinds'")
    with pytest.raises(InputError, match="rebuild"):
        Index(idx)


def _generated_docs(n):
    cities = ["Arlen", "Bexley", "Corvo", "Dunmore", "Elster", "Fenwick", "Galt", "Hollin"]
    for i in range(n):
        yield {"id": f"g{i}", "text": f"Report {i} says that {i * 7 % 997} crates reached the depot in "
                                      f"{cities[i % 8]} on day {i % 31}, and {i % 13} of them were damaged."}


def test_add_survives_kill_mid_way(tmp_path):
    n = 2500
    src = tmp_path / "gen.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in _generated_docs(n)))
    path = tmp_path / "crash.sqlite"
    cmd = [sys.executable, "-m", "unspin.cli", "index", "add", "--index", str(path), str(src)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        seen = 0
        while time.time() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    with Index(path, create=False) as idx:
                        seen = idx.stats()["documents"]
                except InputError:
                    seen = 0
            if seen >= 500:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the add finished before it could be killed; make the input larger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    with Index(path, create=False) as idx:
        st = idx.stats()
        assert 500 <= st["documents"] < n and st["documents"] % 500 == 0  # whole batches only
        ids = [r[0] for r in idx._db.execute("SELECT id FROM docs")]
        assert len(ids) == len(set(ids))
        assert idx._db.execute("SELECT COUNT(*) FROM band WHERE doc NOT IN (SELECT rowid FROM docs)").fetchone()[0] == 0
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Index(path, create=False) as idx:
        assert len(idx) == n
        assert idx._db.execute("SELECT COUNT(DISTINCT id) FROM docs").fetchone()[0] == n
        assert idx.trace(next(_generated_docs(1))["text"])[0].doc_id == "g0"
