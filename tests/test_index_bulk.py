"""Building large indexes: fingerprinting in worker processes (`Index.add(workers=N)`) and the bulk
mode (`bulk=True`: the key table filled once at the end), which must store exactly what a plain
`add` stores, and stay kill-safe: a load stopped or killed before or during its final step
leaves whole batches that `check_index(repair=True)` completes."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from unspin.build.bench_reliability import write_rows
from unspin.cli import main
from unspin.index import BATCH, Index, check_index

REPO = Path(__file__).resolve().parent.parent


def _rows(tmp_path, n):
    path = write_rows(tmp_path / "rows.jsonl", n)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _contents(path) -> tuple[list, list]:
    """(documents, key rows) of an index, as plain lists to compare."""
    with Index(path, create=False) as idx, idx.transaction() as db:
        docs = db.execute("SELECT rowid, id, text, meta, n_words, bands FROM docs ORDER BY rowid").fetchall()
        keys = db.execute("SELECT band_no, hash, doc FROM band ORDER BY band_no, hash, doc").fetchall()
    return docs, keys


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A plain index of 2 * BATCH + 100 made-up documents, and those documents."""
    tmp = tmp_path_factory.mktemp("plain")
    docs = _rows(tmp, 2 * BATCH + 100)
    with Index(tmp / "plain.sqlite") as idx:
        assert idx.add(docs) == len(docs)
    return tmp / "plain.sqlite", docs


@pytest.mark.parametrize("options", [{"workers": 2}, {"bulk": True}, {"workers": 2, "bulk": True}])
def test_workers_and_bulk_store_what_a_plain_add_stores(tmp_path, plain, options):
    plain_path, docs = plain
    path = tmp_path / "built.sqlite"
    seen = []
    with Index(path) as idx:
        assert idx.add(iter(docs), progress=seen.append, **options) == len(docs)
        assert not idx.bulk_pending()
        assert seen == [BATCH, 2 * BATCH, len(docs)]  # one call per committed batch, in order
        assert [m.doc_id for m in idx.trace(docs[700]["text"])][:1] == ["k700"]
    plain_docs, plain_keys = _contents(plain_path)
    docs_now, keys_now = _contents(path)
    assert [d[:5] for d in docs_now] == [d[:5] for d in plain_docs] and [d[5] for d in docs_now] == [
        d[5] for d in plain_docs]
    assert keys_now == plain_keys and len(keys_now) > 10 * len(docs)
    assert check_index(path)["ok"]


def test_bulk_replacing_ids_keeps_one_document_each(tmp_path, plain):
    _, docs = plain
    path = tmp_path / "replace.sqlite"
    with Index(path) as idx:
        idx.add(docs[:600])
        changed = [{"id": d["id"], "text": d["text"].replace("crates", "barrels")} for d in docs[:300]]
        idx.add(changed + docs[600:], bulk=True, workers=2)
        assert len(idx) == len(docs)
        assert "barrels" in idx.get("k5")["text"]
        assert [m.doc_id for m in idx.trace(changed[5]["text"])][:1] == ["k5"]
    assert check_index(path)["ok"]


def test_a_bad_document_or_a_failed_input_ends_a_bulk_load_with_what_came_before(tmp_path, plain):
    _, docs = plain

    def failing():
        yield from docs[:BATCH + 10]
        raise OSError("the reader failed")

    for n, bad in enumerate([docs[:BATCH + 10] + [{"id": 7, "text": "an int id"}], failing()]):
        path = tmp_path / f"bad{n}.sqlite"
        with Index(path) as idx:
            with pytest.raises((TypeError, OSError)):
                idx.add(bad, bulk=True, workers=2)
            assert len(idx) == (BATCH + 10 if n == 0 else BATCH)  # a bad row: all before it; a failed reader:
            assert not idx.bulk_pending()                          # whole batches; and queries see them
            assert [m.doc_id for m in idx.trace(docs[3]["text"])][:1] == ["k3"]
        assert check_index(path)["ok"]


def test_a_bulk_load_stopped_before_its_final_step_is_finished_by_repair(tmp_path, plain):
    stop, workers = KeyboardInterrupt, 1
    plain_path, docs = plain

    def stopped():  # two whole batches and part of a third, then the run is interrupted or the input fails
        yield from docs[:2 * BATCH + 10]
        raise stop

    path = tmp_path / "stopped.sqlite"
    with Index(path) as idx:
        with pytest.raises(stop):
            idx.add(stopped(), bulk=True, workers=workers)
        assert len(idx) == 2 * BATCH  # whole batches only
        assert idx.bulk_pending() and idx.stats()["bulk_pending"]
        assert idx.trace(docs[3]["text"]) == []  # their keys are not in the key table yet
    report = check_index(path)
    assert not report["ok"] and any("unfinished bulk load" in p for p in report["problems"])
    repaired = check_index(path, repair=True)
    assert repaired["ok"], repaired
    assert "finished the interrupted bulk load" in repaired["repaired"]
    with Index(path, create=False) as idx:
        assert not idx.bulk_pending()
        assert [m.doc_id for m in idx.trace(docs[3]["text"])][:1] == ["k3"]
    with Index(tmp_path / "same.sqlite") as idx:
        idx.add(docs[:2 * BATCH])
    assert _contents(path)[1] == _contents(tmp_path / "same.sqlite")[1]


# Runs in a child process: a bulk load whose process is killed (SIGKILL) inside the final step's
# transaction, after the key rows are written and before they are committed.
KILL_IN_FINAL_STEP = """
import json, os, signal, sys
from unspin.index import Index
docs = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
idx = Index(sys.argv[1])
with idx.transaction() as db:
    pass
def kill_at_the_end_of_the_final_step(sql):
    if sql.startswith("DROP TABLE temp.bulk_keys"):
        os.kill(os.getpid(), signal.SIGKILL)
db.set_trace_callback(kill_at_the_end_of_the_final_step)
idx.add(docs, bulk=True)
print("not killed")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_kill_during_the_final_step_leaves_whole_batches_and_repair_completes_them(tmp_path, plain):
    plain_path, docs = plain
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    path = tmp_path / "killed.sqlite"
    proc = subprocess.run([sys.executable, "-c", KILL_IN_FINAL_STEP, str(path), str(rows)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    report = check_index(path)
    assert report["documents"] == len(docs) and not report["ok"]
    with Index(path, create=False) as idx:
        assert idx.bulk_pending()
    repaired = check_index(path, repair=True)
    assert repaired["ok"], repaired
    assert _contents(path) == _contents(plain_path)


def test_index_add_command_takes_workers_and_bulk(tmp_path, capsys):
    rows = write_rows(tmp_path / "rows.jsonl", BATCH + 20)
    path = tmp_path / "cli.sqlite"
    assert main(["index", "add", "--index", str(path), str(rows), "--workers", "2", "--bulk", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["documents"] == BATCH + 20
    assert check_index(path)["ok"]
    assert main(["index", "add", "--index", str(path), str(rows), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_add_refuses_bad_worker_counts(tmp_path):
    with Index(tmp_path / "x.sqlite") as idx:
        for bad in (0, -1, 1.5, True, "2"):
            with pytest.raises(TypeError, match="workers"):
                idx.add([], workers=bad)
        with pytest.raises(TypeError, match="bulk"):
            idx.add([], bulk="yes")
