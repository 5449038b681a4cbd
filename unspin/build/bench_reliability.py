"""Reliability benchmark: fuzzing the readers, kill trials of `index add`, worst-case `check`
time per MB, and false matches of short `trace` queries.

    unspin bench reliability [--out bench] [--fuzz-seconds 150] [--kill-trials 100]
                                             [--parts fuzz,kill,timing,trace]

Writes <out>/reliability.json and <out>/reliability.md (parts not run keep their earlier
results). None of this runs in CI: the tests hold small versions of each part
(tests/test_properties.py, tests/test_index_kill.py, tests/test_reliability.py).

* fuzz: hypothesis, with a time budget per reader, over JSONL (as `check --jsonl` and
  `index add` read it), CSV, gzip, Parquet, HTML and the index file itself (damaged copies of
  a real index, then every Index operation and `check_index --repair`). Each reader runs in a
  child process, so that a segfault or a hang is caught and counted; a crash is any exception
  other than the InputError a person gets.
* kill: `python -m unspin.cli index add` SIGKILLed at random times (`kill_times`: during the
  startup or uniform over the write phase of uninterrupted runs, a few runs in parallel); after
  each: `check_index` passes, the documents are the first k whole batches of the input, no id
  twice; then a rerun completes every tenth killed index.
* timing: seconds per MB of `Engine.check` (the shipped models) on adversarial inputs.
* trace: false matches of unrelated short queries and recall of short spun copies, with the
  short-query rule (`unspin.trace.SHORT_QUERY`) and without it (the rule before it).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import io
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import unspin

from ..index import BATCH, check_index
from ..inputs import InputError

REPO = Path(unspin.__file__).resolve().parents[1]

# Crashes and hangs that this benchmark (and its tests) found while it was written, all fixed;
# each has a regression test.
FOUND_AND_FIXED = [
    ("Parquet", "a string column holding bytes that are not UTF-8 (a damaged file): pyarrow raised "
                "UnicodeDecodeError for the whole batch and `index add` stopped with an internal error (now that "
                "row is a bad row, the others are added)", "tests/test_reliability.py"),
    ("index file", "a kill while a new index was being created could leave some of its tables: the file then "
                   "refused to open (the schema is now created in one transaction)", "tests/test_index_kill.py"),
    ("index file", "damaged pages: `trace` / `index stats` failed with a bare SQLite message; bands or metadata "
                   "that cannot be decoded raised ValueError (internal error)", "tests/test_reliability.py"),
    ("index file", "another application's SQLite file was taken for an index and unspin tables were written into "
                   "it", "tests/test_reliability.py"),
    ("index file", "a damaged schema: SQLite's message quotes the damaged bytes and Python raised "
                   "UnicodeDecodeError instead of an SQLite error (internal error)", "tests/test_reliability.py"),
    ("index file", "`index check --repair` of a file whose id index held damaged values: TypeError while listing "
                   "the lost ids", "bench_reliability fuzz"),
    ("index file", "rows whose id or text is not valid text (a damaged record): `get` returned bytes and `trace` "
                   "raised TypeError; now IndexDamaged, and --repair fixes the text (U+FFFD) or drops the row",
     "tests/test_reliability.py"),
    ("Python API", "`check()` and `Index.add` with lone surrogates in the text: UnicodeEncodeError",
     "tests/test_reliability.py, tests/test_properties.py"),
    ("Python API", "`Index.remove('abc')` removed the documents 'a', 'b', 'c'; `Index(None)` created a file "
                   "named None; ids 1 and '1' were one document", "tests/test_reliability.py"),
]


# ---- kill trials --------------------------------------------------------------------------
def write_rows(path: str | os.PathLike, n: int) -> Path:
    """N made-up JSONL rows {"id": "k<i>", "text": ...} (short ledger sentences), in order."""
    towns = ["Arnby", "Belcourt", "Crayle", "Dunholm", "Eskerby", "Fallow"]
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"k{i}", "text": f"Ledger {i}: the carters of {towns[i % 6]} brought "
                                f"{i * 13 % 501} crates to the market on day {i % 29}, and the inspectors turned "
                                f"back {i % 11} of them because the seals were broken."}) + "\n")
    return path


def kill_times(n: int, startup_s: float, write_s: float, rng: random.Random,
               startup_share: float = 0.2) -> list[tuple[str, float]]:
    """N random kill times as (phase, seconds): ("startup", t) kills t seconds after the start,
    before the index file appears (t uniform over an uninterrupted run's startup); ("write", t)
    kills t seconds after the file appears (uniform over its write phase, and a little after)."""
    out = []
    for _ in range(n):
        if rng.random() < startup_share:
            out.append(("startup", rng.uniform(0.0, startup_s)))
        else:
            out.append(("write", rng.uniform(0.0, write_s * 1.05)))
    return out


# A count on the progress bar of `index add` (tqdm: "index: 1000doc [00:01, ...]").
_ACK_RE = re.compile(r"(\d+)doc\b")


def _add_command(index: Path, rows: Path) -> list[str]:
    return [sys.executable, "-m", "unspin.cli", "index", "add", "--index", str(index), str(rows), "--no-progress"]


def _examine(index: Path, n_docs: int) -> tuple[int, str | None]:
    """(documents, None) when the index after a kill is sound, else (documents, what is wrong)."""
    if not index.exists():
        return 0, None
    try:
        report = check_index(index)
    except Exception as err:  # noqa: BLE001 - any failure of the check is a failed trial
        return -1, f"check_index raised {type(err).__name__}: {err}"
    if not report["ok"]:
        return report["documents"], f"index check: {report['problems']}"
    n = report["documents"]
    if n % BATCH and n != n_docs:
        return n, f"{n} documents: not whole batches of {BATCH}"
    if n:
        with contextlib.closing(sqlite3.connect(index)) as db:
            total, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM docs").fetchone()
            ids = {r[0] for r in db.execute("SELECT id FROM docs")}
        if total != distinct:
            return n, f"{total - distinct} duplicate ids"
        if ids != {f"k{i}" for i in range(n)}:
            return n, "the documents present are not the first whole batches of the input"
    return n, None


def _timed_run(index: Path, rows: Path) -> tuple[int, float, float, str]:
    """An uninterrupted `index add`: (exit status, seconds until the index file appeared, seconds in all, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(_add_command(index, rows), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    appeared = None
    while proc.poll() is None:
        if appeared is None and index.exists():
            appeared = time.perf_counter() - t0
        time.sleep(0.002)
    total = time.perf_counter() - t0
    return proc.returncode, appeared if appeared is not None else total, total, proc.stderr.read()


def kill_trials(rows: Path, workdir: Path, n_trials: int = 100, seed: int = 0, parallel: int | None = None,
                rerun: str = "all", log: Callable[[str], None] | None = None) -> dict:
    """Run `index add` on ROWS n_trials times into fresh indexes, SIGKILL each at a random time
    (`kill_times`), examine each index, then complete the killed indexes by a rerun (rerun="all",
    "sample": every tenth, or "last": only the last one). Returns the counts and any failures."""
    log = log or (lambda _msg: None)
    rows, workdir = Path(rows), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    n_docs = sum(1 for line in open(rows, encoding="utf-8") if line.strip())
    parallel = parallel or max(2, min(8, (os.cpu_count() or 2) // 2))
    failures: list[dict] = []
    # Uninterrupted runs, as many at a time as the trials will run: how long startup and writing take.
    refs = []
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for i, (rc, appeared, total, err) in enumerate(pool.map(
                lambda i: _timed_run(workdir / f"reference{i}.sqlite", rows), range(parallel))):
            refs.append((appeared, total))
            if rc != 0 or _examine(workdir / f"reference{i}.sqlite", n_docs) != (n_docs, None):
                failures.append({"trial": f"reference{i}", "error": err[-500:]})
    startup_s = sum(a for a, _ in refs) / len(refs)
    run_s = sum(t for _, t in refs) / len(refs)
    write_s = max(run_s - startup_s, 0.1)
    log(f"kill trials: an uninterrupted run takes {run_s:.1f}s (the index file appears at {startup_s:.1f}s); "
        f"{n_trials} trials, {parallel} at a time")
    times = kill_times(n_trials, startup_s, write_s, random.Random(seed))
    after: list[int] = []
    killed_before_end = 0
    acknowledged_max = 0
    for wave in range(0, n_trials, parallel):
        procs = []
        for i in range(wave, min(wave + parallel, n_trials)):
            path = workdir / f"trial{i}.sqlite"
            # --progress: the bar on stderr counts the documents of each committed batch, so what
            # the process acknowledged before it was killed can be checked afterwards.
            ack = open(workdir / f"trial{i}.stderr", "w+", encoding="utf-8")
            proc = subprocess.Popen([*_add_command(path, rows)[:-1], "--progress"], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=ack)
            procs.append([i, path, proc, time.perf_counter(), ack])
        pending = list(procs)
        while pending:
            now = time.perf_counter()
            for item in list(pending):
                i, path, proc, start = item[:4]
                phase, delay = times[i]
                if proc.poll() is not None:
                    pending.remove(item)
                    continue
                if phase == "write" and len(item) == 5:  # the clock starts when the file appears
                    if not path.exists():
                        continue
                    item.append(now)
                t_ref = start if phase == "startup" else item[5]
                if now - t_ref >= delay:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    killed_before_end += 1
                    pending.remove(item)
            time.sleep(0.002)
        for i, path, _proc, _start, ack, *_ in procs:
            n, problem = _examine(path, n_docs)
            after.append(n)
            ack.seek(0)
            acknowledged = max((int(x) for x in _ACK_RE.findall(ack.read())), default=0)
            ack.close()
            acknowledged_max = max(acknowledged_max, acknowledged)
            if n < acknowledged:
                problem = (problem + "; " if problem else "") + f"{acknowledged} documents acknowledged, {n} present"
            if problem:
                failures.append({"trial": i, "kill": [times[i][0], round(times[i][1], 3)], "documents": n,
                                 "error": problem})
    log(f"kill trials: {killed_before_end} killed before they finished; documents after the kills: "
        f"{sorted(set(after))}")
    # the killed indexes completed by a rerun
    rerun_ok = True
    todo = {"all": list(range(n_trials)), "last": list(range(n_trials))[-1:],
            "sample": list(range(n_trials))[::10]}[rerun]
    for wave in range(0, len(todo), parallel):
        procs = [(i, subprocess.Popen(_add_command(workdir / f"trial{i}.sqlite", rows), cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
                 for i in todo[wave:wave + parallel]]
        for i, proc in procs:
            _out, err = proc.communicate(timeout=600)
            n, problem = _examine(workdir / f"trial{i}.sqlite", n_docs)
            if proc.returncode != 0 or problem or n != n_docs:
                rerun_ok = False
                failures.append({"trial": i, "rerun": True, "documents": n, "error": problem or err[-300:]})
    survived = n_trials - len({f["trial"] for f in failures if isinstance(f["trial"], int) and not f.get("rerun")})
    return {"trials": n_trials, "survived": survived, "killed_before_end": killed_before_end, "n_docs": n_docs,
            "batch": BATCH, "uninterrupted_run_s": round(run_s, 2), "startup_s": round(startup_s, 2),
            "parallel": parallel, "kills_in_startup": sum(1 for p, _ in times if p == "startup"),
            "documents_after_kill": after, "most_acknowledged_before_a_kill": acknowledged_max,
            "reruns": len(todo), "rerun_ok": rerun_ok, "failures": failures}


def run_kill(n_trials: int, seed: int, log) -> dict:
    with tempfile.TemporaryDirectory(prefix="unspin-kill-") as tmp:
        rows = write_rows(Path(tmp) / "rows.jsonl", 3 * BATCH + 250)
        result = kill_trials(rows, Path(tmp) / "trials", n_trials=n_trials, seed=seed, rerun="sample", log=log)
    counts: dict[str, int] = {}
    for n in result.pop("documents_after_kill"):
        counts[str(n)] = counts.get(str(n), 0) + 1
    result["documents_after_kill"] = dict(sorted(counts.items(), key=lambda kv: int(kv[0])))
    return result


# ---- fuzzing the readers ------------------------------------------------------------------
def _fuzz_targets() -> dict[str, tuple]:
    """name -> (strategy, target(data, tmpdir)); a target raises on a crash, InputError is fine."""
    from hypothesis import strategies as st

    from ..inputs import (BadRow, InputError, check_input, html_to_text, iter_input_records, json_line,
                          load_document, read_jsonl_rows, reduce_input)

    any_char = st.characters(exclude_categories=())
    lines = st.one_of(
        st.builds(lambda i, t, extra: json.dumps({"id": i, "text": t, **extra}),
                  st.one_of(st.text(any_char, max_size=8), st.integers(), st.floats(), st.none(), st.booleans(),
                            st.lists(st.integers(), max_size=2)),
                  st.one_of(st.text(any_char, max_size=200), st.integers(), st.none(),
                            st.just("<!doctype html><html><body><p>A page.</p></body></html>")),
                  st.dictionaries(st.text(max_size=4), st.one_of(st.text(any_char, max_size=5), st.floats()),
                                  max_size=2)),
        st.sampled_from(['{"id": "a", "text": "x \\ud800 y"}', '{"id": "\\udc00", "text": "z"}', "{", "[]", "null",
                         '{"id": NaN, "text": "q"}', '{"id": 1e999, "text": "q"}', "\ufeff{}", '{"text": "x"}',
                         '{"id": "a", "text": "b", "id": "c"}', "\x00\x01",
                         '{"id": "x", "text": "' + "w " * 400 + '"}']),
        st.text(any_char, max_size=60))
    seps = st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\r", b""])

    def join(parts):
        return b"".join(line.encode("utf-8", "surrogatepass") + sep for line, sep in parts)

    jsonl = st.one_of(st.binary(max_size=2000), st.lists(st.tuples(lines, seps), max_size=30).map(join))
    csv_data = st.one_of(st.binary(max_size=2000), st.builds(
        lambda h, b: h + b, st.sampled_from([b"id,text\n", b"\xef\xbb\xbfid,text\r\n", b"text,id,x\n", b"id\n", b"",
                                            b'"id","text"\n', b"id,text,id\n"]),
        st.one_of(st.binary(max_size=1500), st.text(any_char, max_size=1500).map(
            lambda t: t.encode("utf-8", "surrogatepass")),
            st.lists(st.tuples(st.text(max_size=10), st.text(any_char, max_size=60)), max_size=20).map(
                lambda rows: "".join(f'"{a}","{b}"\n' for a, b in rows).encode("utf-8", "surrogatepass")))))
    tags = st.sampled_from(["<html>", "<body>", "<p>", "</p>", "<div>", "</div>", "<script>", "</script>", "<style>",
                            "<!--", "-->", "<![CDATA[", "]]>", "<table><tr><td>", "<a href='x'>", "</a>", "&amp;",
                            "&#0;", "&#xD800;", "<!doctype html>", "<br/>", "<?xml version='1.0'?>", "<svg>", "<"])
    html = st.lists(st.one_of(tags, st.text(any_char, max_size=30), st.just("The plan was ready. ")),
                    max_size=200).map("".join)

    def records(path: str) -> None:
        try:
            check_input(path)
        except InputError:
            return
        try:
            for rec in iter_input_records(path):
                if isinstance(rec, BadRow):
                    assert isinstance(rec.reason, str)
                else:
                    assert isinstance(rec["id"], str) and isinstance(rec["text"], str)
                    rec["text"].encode("utf-8")  # storable
        except InputError:
            pass

    def write(tmp: str, name: str, data: bytes) -> str:
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def jsonl_check(data: bytes, tmp: str) -> None:
        path = write(tmp, "rows.jsonl", data)
        for row in read_jsonl_rows(path, html=None):
            rec = {"id": row.id, "error": row.error} if row.error else {"id": row.id, "text": row.text}
            json_line(rec).encode("utf-8")

    def jsonl_index(data: bytes, tmp: str) -> None:
        records(write(tmp, "rows.jsonl", data))

    def gz(data: bytes, tmp: str) -> None:
        import gzip

        packed = gzip.compress(data)
        cut = len(packed) if not data else len(packed) - (data[0] % 8)  # sometimes truncated
        records(write(tmp, "rows.jsonl.gz", packed[:cut]))
        records(write(tmp, "rows.csv.gz", packed[:cut]))

    def csv_target(data: bytes, tmp: str) -> None:
        records(write(tmp, "rows.csv", data))

    def html_target(text: str, tmp: str) -> None:
        out = html_to_text(text)
        assert isinstance(out, str)
        reduce_input(text, None)
        path = write(tmp, "page.html", text.encode("utf-8", "surrogatepass"))
        try:
            load_document(path)
        except InputError:
            pass

    def parquet(mutation, tmp: str) -> None:
        data = bytearray(_parquet_seed())
        for pos, value in mutation:
            data[pos % len(data)] = value
        records(write(tmp, "rows.parquet", bytes(data)))

    mutation = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=12)
    page_hits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 4096), st.integers(0, 255)),
                         min_size=1, max_size=4)

    def index_file(hits, tmp: str) -> None:
        _exercise_damaged_index(_index_seed(), hits, tmp)

    return {
        "jsonl (check --jsonl)": (jsonl, jsonl_check),
        "jsonl (index add)": (jsonl, jsonl_index),
        "csv": (csv_data, csv_target),
        "gzip (jsonl.gz, csv.gz)": (st.one_of(jsonl, csv_data), gz),
        "parquet (mutated file)": (mutation, parquet),
        "html": (html, html_target),
        "index file (damaged copies)": (page_hits, index_file),
    }


FUZZ_READERS = ("jsonl (check --jsonl)", "jsonl (index add)", "csv", "gzip (jsonl.gz, csv.gz)",
                "parquet (mutated file)", "html", "index file (damaged copies)")


@functools.lru_cache(maxsize=1)
def _parquet_seed() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = pa.table({"id": ["a", "b", "c"], "text": ["The plan was ready.", "The road was closed.", "Hi."],
                      "n": [1, 2, 3]})
    pq.write_table(table, buf, row_group_size=2)
    return buf.getvalue()


_INDEX_SEED: bytes | None = None
_INDEX_TEXTS = ["The ferry left the harbour late on Monday because of the fog over the bay.",
                "A teacher in the village knitted scarves for every child in the school this winter.",
                "Workers repainting the lighthouse found a box of letters hidden by a keeper long ago."]


def _index_seed() -> bytes:
    """A small index file (60 documents) to damage."""
    global _INDEX_SEED
    if _INDEX_SEED is None:
        from ..index import Index

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "seed.sqlite")
            with Index(path) as idx:
                idx.add({"id": f"d{i}", "text": f"{_INDEX_TEXTS[i % 3]} Entry {i} of the log, page {i * 7}."}
                        for i in range(60))
            _INDEX_SEED = Path(path).read_bytes()
    return _INDEX_SEED


def _exercise_damaged_index(seed: bytes, hits, tmp: str) -> None:
    """Damage a copy of an index (runs of bytes overwritten), then use it every way there is."""
    from ..index import Index
    from ..inputs import InputError

    data = bytearray(seed)
    for pos, length, value in hits:
        pos %= len(data)
        data[pos:pos + length] = bytes([value]) * len(data[pos:pos + length])
    path = os.path.join(tmp, "damaged.sqlite")
    for suffix in ("", "-wal", "-shm", ".damaged", ".damaged-wal", ".damaged-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + suffix)
    Path(path).write_bytes(bytes(data))

    def use() -> None:
        with Index(path, create=False) as idx:
            len(idx)
            idx.stats()
            idx.get("d1")
            "d2" in idx  # noqa: B015
            idx.trace(_INDEX_TEXTS[0])
            idx.add([{"id": "new", "text": _INDEX_TEXTS[1] + " A new entry."}, {"id": "d3", "text": _INDEX_TEXTS[2]}])
            idx.remove(["d4", "d5"])

    with contextlib.suppress(InputError):
        use()
    check_index(path)
    report = check_index(path, repair=True)
    if report["ok"]:  # a repaired index must be usable
        use()
        assert check_index(path)["ok"], "repaired index fails the check after use"


FUZZ_CHUNK = 100  # most examples per hypothesis run; runs (new seeds) follow each other until the budget is spent


def _fuzz_child(name: str, budget_s: float, seed: int, queue) -> None:
    """Run one fuzz target for budget_s seconds (in a child process); report on the queue."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from ..inputs import InputError

    sys.stdout = open(os.devnull, "w")  # hypothesis reports the shrunk example; the queue says it all
    strategy, target = _fuzz_targets()[name]
    stats = {"inputs": 0, "crash": None, "max_s": 0.0}
    deadline = time.time() + budget_s
    tmp = tempfile.mkdtemp(prefix="unspin-fuzz-")

    def body(data) -> None:
        stats["inputs"] += 1
        t0 = time.perf_counter()
        try:
            target(data, tmp)
        except InputError:
            pass
        finally:
            stats["max_s"] = max(stats["max_s"], time.perf_counter() - t0)
            queue.put(("progress", stats["inputs"], stats["max_s"]))

    chunk = 0
    started = time.time()
    while time.time() < deadline and stats["crash"] is None:
        per_input = (time.time() - started) / max(stats["inputs"], 1)
        n = FUZZ_CHUNK if not stats["inputs"] else int(min(FUZZ_CHUNK, max(5, (deadline - time.time()) / per_input)))
        run = hypothesis_seed(seed * 100_003 + chunk)(
            settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                     phases=[Phase.generate, Phase.shrink])(given(data=strategy)(body)))
        chunk += 1
        try:
            run()
        except BaseException as err:  # noqa: BLE001 - the crash found (hypothesis re-raises the shrunk case)
            stats["crash"] = f"{type(err).__name__}: {str(err)[:400]}"
    shutil.rmtree(tmp, ignore_errors=True)
    queue.put(("done", stats))


def run_fuzz(budget_s: float, seed: int, log, hang_s: float = 60.0) -> dict:
    """Every fuzz target in its own child process, budget_s seconds each; a child that dies or stops
    reporting for hang_s seconds is a crash or a hang."""
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    names = list(FUZZ_READERS)
    from ..lexicon import Channel

    Channel.load_default(), _parquet_seed(), _index_seed()  # once, inherited by the forked children
    results = {}
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=_fuzz_child, args=(name, budget_s, seed, queue), daemon=True)
        proc.start()
        stats = {"inputs": 0, "crash": None, "hang": None, "max_s": 0.0}
        last = time.time()
        finished = False
        while True:
            try:
                kind, *payload = queue.get(timeout=1.0)
            except Exception:  # noqa: BLE001 - queue.Empty
                if not proc.is_alive():
                    if not finished:
                        stats["crash"] = f"the reader's process died (exit {proc.exitcode})"
                    break
                if time.time() - last > hang_s:
                    stats["hang"] = f"no input finished in {hang_s:.0f}s"
                    proc.kill()
                    break
                continue
            last = time.time()
            if kind == "progress":
                stats["inputs"], stats["max_s"] = payload[0], payload[1]
            else:
                done = payload[0]
                stats.update(inputs=done["inputs"], crash=done["crash"], max_s=done["max_s"])
                finished = True
        proc.join(5)
        stats["max_s"] = round(stats["max_s"], 3)
        results[name] = stats
        log(f"fuzz {name}: {stats['inputs']:,} inputs, crash: {stats['crash']}, hang: {stats['hang']}, "
            f"slowest {stats['max_s']}s")
    return {"budget_s_per_reader": budget_s, "seed": seed, "readers": results,
            "inputs": sum(r["inputs"] for r in results.values()),
            "crashes": sum(bool(r["crash"]) for r in results.values()),
            "hangs": sum(bool(r["hang"]) for r in results.values())}


# ---- worst-case time per MB of check ----------------------------------------------------------
def _timing_inputs(size: int, rng: random.Random) -> dict[str, tuple[str, bool | None]]:
    """name -> (text, html) of about `size` characters each."""
    from .corpus import iter_paragraphs

    paras: list[str] = []
    for p in iter_paragraphs("heldout"):
        paras.append(p)
        if sum(map(len, paras)) > size:
            break
    prose = "\n".join(paras)[:size]

    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    spun = prose
    with contextlib.suppress(Exception):  # the spinner needs the Moby thesaurus in shared/data
        from .spinner import Spinner

        spun = Spinner.from_moby().spin_to_fraction(prose, 0.6, seed=1).text
    chars = [chr(rng.randrange(0x20, 0x30000)) for _ in range(size)]
    return {
        "English prose (held-out paragraphs)": (prose, False),
        "prose spun at 60% (Moby spinner)": (spun, False),
        "abbreviations and initials in sentences": (fill("Mr. J. R. Smith of the U.S. Dept. said that Dr. No. 5 met "
                                                         "Gen. Lee in St. Louis at approx. 3 p.m. on Jan. 4. "), False),
        "'Mr. ' repeated": (fill("Mr. "), False),
        "one long line, no punctuation": (fill("the minister said that the plan would cost more than they "
                                               "expected and "), False),
        "many short lines": (fill("The plan was ready.\n"), False),
        "one word of letters": ("a" * size, False),
        "random Unicode": ("".join(c if not "\ud800" <= c <= "\udfff" else " " for c in chars), False),
        "HTML soup (html=True)": (fill("<div><p>The minister said <b>the plan <i>would</p> cost</div> more <td>"
                                       "than <script>x</script>expected.</span>"), True),
    }


def run_timing(size: int, log) -> dict:
    from ..detect import Engine

    engine = Engine.load()
    rng = random.Random(0)
    rows = {}
    for name, (text, html) in _timing_inputs(size, rng).items():
        n_bytes = len(text.encode("utf-8"))
        t0 = time.perf_counter()
        result = engine.check(text, html=html)
        dt = time.perf_counter() - t0
        rows[name] = {"bytes": n_bytes, "seconds": round(dt, 2), "s_per_mb": round(dt / (n_bytes / 1e6), 1),
                      "verdict": result.verdict}
        log(f"timing {name}: {n_bytes:,} bytes in {dt:.2f}s ({rows[name]['s_per_mb']} s/MB)")
    # linear? the slowest input again at twice the size
    worst = max(rows, key=lambda k: rows[k]["s_per_mb"])
    text, html = _timing_inputs(2 * size, rng)[worst]
    t0 = time.perf_counter()
    engine.check(text, html=html)
    dt = time.perf_counter() - t0
    double = {"input": worst, "bytes": len(text.encode("utf-8")), "seconds": round(dt, 2),
              "s_per_mb": round(dt / (len(text.encode("utf-8")) / 1e6), 1)}
    log(f"timing {worst} at twice the size: {dt:.2f}s ({double['s_per_mb']} s/MB)")
    return {"size_chars": size, "inputs": rows, "worst": worst,
            "worst_s_per_mb": max(rows[worst]["s_per_mb"], double["s_per_mb"]), "double_size": double}


# ---- short trace queries ------------------------------------------------------------------------
def run_trace(n_docs: int, n_queries: int, log, lengths=(8, 15, 25, 40), spun_lengths=(15, 20, 25)) -> dict:
    """False matches of unrelated short queries and recall@1 of short spun copies, with and
    without the short-query rule."""
    from .. import trace as trace_module
    from ..index import Index
    from .corpus import iter_paragraphs
    from .spinner import Spinner

    docs, seen = [], set()
    for p in iter_paragraphs("train"):
        if 30 <= len(p.split()) <= 400 and p[:80] not in seen:
            seen.add(p[:80])
            docs.append(p)
        if len(docs) >= n_docs:
            break
    held = []
    for p in iter_paragraphs("heldout"):
        if len(p.split()) >= 60:
            held.append(p)
        if len(held) >= 2000:
            break
    held = random.Random(0).sample(held, min(n_queries, len(held)))

    def cut(p: str, n: int, rng: random.Random) -> str:
        w = p.split()
        s = rng.randrange(0, len(w) - n + 1)
        return " ".join(w[s:s + n])

    unrelated = {n: [cut(p, n, random.Random(n * 1000 + i)) for i, p in enumerate(held)] for n in lengths}
    spinner = Spinner.from_moby()
    picks = random.Random(1).sample(range(len(docs)), min(n_queries, len(docs)))
    spun = {n: [(spinner.spin_to_fraction(" ".join(docs[i].split()[:n]), 0.25, seed=i).text, f"p{i}") for i in picks]
            for n in spun_lengths}
    from ..fingerprint import words_of

    under = [i for i, d in enumerate(docs) if len(words_of(d)) < trace_module.SHORT_QUERY][:n_queries]
    whole = {f: [(spinner.spin_to_fraction(docs[i], f, seed=i).text, f"p{i}") for i in under] for f in (0.4, 0.6)}
    out: dict = {"n_docs": len(docs), "n_queries": len(held), "short_query_words": trace_module.SHORT_QUERY,
                 "n_whole_short_paragraphs": len(under),
                 "rules": {}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        idx = Index(os.path.join(tmp, "trace.sqlite"))
        idx.add({"id": f"p{i}", "text": t} for i, t in enumerate(docs))
        log(f"trace: indexed {len(docs):,} train paragraphs in {time.perf_counter() - t0:.0f}s")
        out["spun_source_among_candidates"] = {
            str(n): sum(1 for q, gold in qs if gold in {d for d, _t, _h in idx.candidate_documents(
                q, limit=trace_module.PREFILTER)}) for n, qs in spun.items()}
        real_short = trace_module.SHORT_QUERY
        try:
            for rule, short in (("before (plain min coverage 0.4)", 0), ("after (short-query rule)", real_short)):
                trace_module.SHORT_QUERY = short
                r = {"unrelated_false_matches": {}, "spun_found_at_1": {}, "whole_short_spun_found_at_1": {}}
                for n, qs in unrelated.items():
                    r["unrelated_false_matches"][str(n)] = sum(1 for q in qs if trace_module.trace(idx, q))
                for n, qs in spun.items():
                    r["spun_found_at_1"][str(n)] = sum(1 for q, gold in qs
                                                       if (m := trace_module.trace(idx, q)) and m[0].doc_id == gold)
                for f, qs in whole.items():
                    r["whole_short_spun_found_at_1"][f"{f:.0%}"] = sum(
                        1 for q, gold in qs if (m := trace_module.trace(idx, q)) and m[0].doc_id == gold)
                out["rules"][rule] = r
                log(f"trace {rule}: {r}")
        finally:
            trace_module.SHORT_QUERY = real_short
            idx.close()
    return out


# ---- report -------------------------------------------------------------------------------------
def render_md(r: dict) -> str:
    lines = ["# Reliability benchmark", "",
             "`unspin bench reliability` (see its docstring). The CI tests hold small "
             "versions of each part: tests/test_properties.py, tests/test_index_kill.py, tests/test_reliability.py.",
             ""]
    f = r.get("fuzz")
    k = r.get("kill")
    t = r.get("timing")
    lines += ["| | |", "|---|---|"]
    if f:
        lines.append(f"| inputs tried (fuzz) | {f['inputs']:,} over {len(f['readers'])} readers "
                     f"({f['budget_s_per_reader']:.0f} s each) |")
        lines.append(f"| crashes / hangs in this run | {f['crashes']} / {f['hangs']} |")
    lines.append(f"| crashes found and fixed | {len(FOUND_AND_FIXED)} (listed below) |")
    if k:
        lines.append(f"| kill trials survived | {k['survived']} / {k['trials']} (then {k['reruns']} of the killed "
                     f"indexes rerun: {'all completed' if k['rerun_ok'] else 'NOT ALL completed'}) |")
    if t:
        lines.append(f"| worst-case `check` time per MB | {t['worst_s_per_mb']} s ({t['worst']}) |")
    if f:
        lines += ["", "## Fuzzing the readers", "",
                  "hypothesis, one child process per reader (a segfault or a hang would be caught); a crash is any "
                  "exception other than the InputError a person gets.", "",
                  "| reader | inputs | crash | hang | slowest input (s) |", "|---|---|---|---|---|"]
        for name, s in f["readers"].items():
            lines.append(f"| {name} | {s['inputs']:,} | {s['crash'] or '-'} | {s['hang'] or '-'} | {s['max_s']} |")
    lines += ["", "Found while this benchmark and its tests were written, all fixed (each has a regression test):", ""]
    lines += [f"- {where}: {what} ({test})" for where, what, test in FOUND_AND_FIXED]
    if k:
        lines += ["", "## Kill trials", "",
                  f"`python -m unspin.cli index add` of {k['n_docs']:,} rows (batches of {k['batch']}), "
                  f"{k['parallel']} runs at a time, each SIGKILLed at a random time: {k['kills_in_startup']} trials during the startup "
                  f"(uniform over its {k['startup_s']} s, before the index file appears), the others uniform over the "
                  f"write phase (uninterrupted runs, as many at a time, take {k['uninterrupted_run_s']} s in all); "
                  f"{k['killed_before_end']} of {k['trials']} were killed before they finished. After each kill: "
                  f"`check_index` passes, every batch the process had acknowledged (its progress bar counted "
                  f"it; up to {k.get('most_acknowledged_before_a_kill', '?')} documents) is present, the documents "
                  f"are the first whole batches of the input, no id twice. "
                  f"Then a rerun completed {k['reruns']} of the killed indexes (every tenth): "
                  f"{'all of them' if k['rerun_ok'] else 'NOT ALL'}.", "",
                  "| documents after the kill | trials |", "|---|---|"]
        lines += [f"| {n} | {c} |" for n, c in k["documents_after_kill"].items()]
        if k["failures"]:
            lines += ["", "Failures:", ""] + [f"- {json.dumps(x)}" for x in k["failures"]]
    if t:
        lines += ["", "## Worst-case time of `check`", "",
                  f"`Engine.check` with the shipped models, one input of about {t['size_chars']:,} characters each "
                  f"(time only; one core).", "",
                  "| input | bytes | seconds | s per MB | verdict |", "|---|---|---|---|---|"]
        for name, row in t["inputs"].items():
            lines.append(f"| {name} | {row['bytes']:,} | {row['seconds']} | {row['s_per_mb']} | {row['verdict']} |")
        d = t["double_size"]
        worst = t["inputs"][t["worst"]]["s_per_mb"]
        verdict = ("time grows linearly with the input (the first run also warms the decoder's caches)"
                   if d["s_per_mb"] <= 1.5 * worst else "time grows faster than the input")
        lines += ["", f"The slowest, at twice the size: {d['bytes']:,} bytes in {d['seconds']} s "
                      f"({d['s_per_mb']} s/MB): {verdict}. At the worst rate a document at the 2 MB size limit "
                      f"takes about {2 * t['worst_s_per_mb'] / 60:.0f} minutes."]
    tr = r.get("trace")
    if tr:
        first = next(iter(tr["rules"].values()))
        lengths, spun_lengths = list(first["unrelated_false_matches"]), list(first["spun_found_at_1"])
        lines += ["", "## Short `trace` queries", "",
                  f"Index of {tr['n_docs']:,} train-split corpus paragraphs. Unrelated queries: {tr['n_queries']} word "
                  f"windows cut from held-out paragraphs (any match is false). Spun copies: the first 15-25 words of "
                  f"{tr['n_queries']} indexed paragraphs, spun (Moby spinner, 25% of the words). Queries under "
                  f"{tr['short_query_words']} words get `reliable: false` and the stricter rule.", "",
                  "| rule | " + " | ".join(f"unrelated {n} words: false matches" for n in lengths) + " | "
                  + " | ".join(f"spun {n} words: found" for n in spun_lengths) + " |",
                  "|---|" + "---|" * (len(lengths) + len(spun_lengths))]
        for rule, x in tr["rules"].items():
            cells = [*x["unrelated_false_matches"].values(), *x["spun_found_at_1"].values()]
            lines.append(f"| {rule} | " + " | ".join(f"{v}/{tr['n_queries']}" for v in cells) + " |")
        lines += ["", f"Whole indexed paragraphs under {tr['short_query_words']} words "
                      f"({tr['n_whole_short_paragraphs']}), spun: found at 1 "
                  + "; ".join(f"{rule}: " + ", ".join(f"{v}/{tr['n_whole_short_paragraphs']} at {f} spun"
                                                      for f, v in x["whole_short_spun_found_at_1"].items())
                              for rule, x in tr["rules"].items()) + "."]
        cand = tr["spun_source_among_candidates"]
        lines += ["", "Spun copies whose source is among the LSH candidates at all: "
                  + ", ".join(f"{cand[n]}/{tr['n_queries']} at {n} words" for n in spun_lengths)
                  + " (a short query holds few of a long paragraph's shingles): the rest are lost before any "
                    "acceptance rule."]
    return "\n".join(lines) + "\n"


PARTS = ("fuzz", "kill", "timing", "trace")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin bench reliability`."""
    ap.add_argument("--out", default="bench", help="folder for reliability.json and reliability.md (default bench/)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default {','.join(PARTS)})")
    ap.add_argument("--fuzz-seconds", type=float, default=20.0, help="fuzz budget per reader (default 20)")
    ap.add_argument("--kill-trials", type=int, default=100, help="kill trials (default 100)")
    ap.add_argument("--timing-chars", type=int, default=100_000, help="size of each timing input (default 100,000)")
    ap.add_argument("--trace-docs", type=int, default=5000, help="paragraphs in the trace index (default 5000)")
    ap.add_argument("--trace-queries", type=int, default=300, help="queries per group (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """`unspin bench reliability`: fuzz the readers, kill `index add`, time worst cases, short trace queries."""
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise InputError(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "reliability.json"
    result = json.loads(json_path.read_text()) if json_path.exists() else {}
    t0 = time.time()

    def log(msg: str) -> None:
        print(f"[reliability {time.time() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if "trace" in parts:
        result["trace"] = run_trace(args.trace_docs, args.trace_queries, log)
    if "kill" in parts:
        result["kill"] = run_kill(args.kill_trials, args.seed, log)
    if "fuzz" in parts:
        result["fuzz"] = run_fuzz(args.fuzz_seconds, args.seed, log)
    if "timing" in parts:
        result["timing"] = run_timing(args.timing_chars, log)
    result["found_and_fixed"] = [{"where": w, "what": x, "test": t} for w, x, t in FOUND_AND_FIXED]
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (out / "reliability.md").write_text(render_md(result))
    log(f"wrote {json_path} and {out / 'reliability.md'}")
    return 0

