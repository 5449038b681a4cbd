"""Kill tests: `unspin index add` killed (SIGKILL) at random times leaves a sound index.

After each kill: `unspin index check` passes, every batch the process acknowledged (on its
progress bar) is present, the documents present are the first whole
batches of the input (a multiple of BATCH, or all of them), no id is there twice; a rerun
completes the index. The trials run two or more at a time; `python -m
unspin.build.bench_reliability` runs 100 (and reruns every killed index).
"""
import json
import os
import random
import sys

import pytest

from unspin.index import BATCH, check_index
from unspin.build.bench_reliability import kill_times, kill_trials, write_rows

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("SIGKILL is POSIX", allow_module_level=True)


def test_random_kills_leave_whole_batches(tmp_path):
    rows = write_rows(tmp_path / "rows.jsonl", 2 * BATCH + 100)
    result = kill_trials(rows, tmp_path / "trials", n_trials=10, seed=int(os.environ.get("UNSPIN_KILL_SEED", 7)),
                         rerun="last")
    assert result["n_docs"] == 2 * BATCH + 100
    assert result["survived"] == result["trials"] == 10, json.dumps(result["failures"], indent=1)
    counts = result["documents_after_kill"]
    assert all(c % BATCH == 0 or c == result["n_docs"] for c in counts)
    assert result["killed_before_end"] >= 5  # most kills landed before the run could finish
    assert result["rerun_ok"], result["failures"]
    # Every batch the process acknowledged (its progress bar counted it) was there after the kill.
    assert result["most_acknowledged_before_a_kill"] >= BATCH


def test_a_kill_before_the_first_write_leaves_an_openable_file(tmp_path):
    """What a kill during index creation can leave: an SQLite file without tables. It checks as
    an empty index and `index add` fills it."""
    import sqlite3

    from unspin.cli import main

    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()
    report = check_index(path)
    assert report["ok"] is True and report["documents"] == 0 and "no index yet" in report["note"]
    rows = write_rows(tmp_path / "rows.jsonl", 3)
    assert main(["index", "add", "--index", str(path), str(rows), "--no-progress"]) == 0
    assert check_index(path)["documents"] == 3


def test_trial_kill_times_are_random_but_reproducible(tmp_path):
    a, b = kill_times(40, 2.0, 4.0, random.Random(1)), kill_times(40, 2.0, 4.0, random.Random(1))
    assert a == b and len(set(a)) == 40
    assert {p for p, _ in a} == {"startup", "write"}
    assert all(0 <= t <= (2.0 if p == "startup" else 4.0 * 1.05) for p, t in a)
