"""`unspin bench serve`: load on `unspin serve` over loopback, with a bounded load generator.

For each worker count: start `unspin serve` on 127.0.0.1, wait for /readyz, then
1. closed loop: `--concurrency` clients POST 500-word texts to /v1/check back to back for
   `--duration` seconds: requests/s (the sustainable rate) and latency p50/p99;
2. overload: an open loop at twice that rate for `--overload-seconds`: how many requests were
   answered, how many shed (503/429), and the latency of the answered ones;
3. memory (the last worker count only): the server's resident memory (all its processes) sampled
   over up to `--memory-requests` requests or `--memory-seconds`, whichever ends first.
Every loop has a fixed end (a count or a deadline); the generator holds at most `--max-clients`
connections. Texts: held-out corpus articles (never seen by the models) cut to `--words` words.
Needs ../shared/data. Writes bench/serve.json and bench/serve.md.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import InputError
from .corpus import add_progress_option, default_data_dir, iter_articles, progress_enabled, stderr_log

READY_TIMEOUT_S = 180


@dataclass
class Outcome:
    """What a load phase saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ok: list[float] = field(default_factory=list)  # seconds, answered (200) requests only
    errors: int = 0                                           # connection failures
    seconds: float = 0.0

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies_ok.append(latency)

    def summary(self) -> dict:
        ok = sorted(self.latencies_ok)
        n = sum(self.statuses.values())
        shed = self.statuses.get(503, 0) + self.statuses.get(429, 0)
        return {"requests": n, "ok": len(ok), "shed": shed, "connection_errors": self.errors,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "seconds": round(self.seconds, 1), "ok_per_s": round(len(ok) / self.seconds, 2) if self.seconds else 0,
                "p50_ms": round(1000 * percentile(ok, 0.50), 1) if ok else None,
                "p99_ms": round(1000 * percentile(ok, 0.99), 1) if ok else None,
                "max_ms": round(1000 * ok[-1], 1) if ok else None}


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


class Client:
    """A client that opens a connection per request: with several worker processes the kernel hands
    each new connection to one of them, so kept-alive connections would pin a client to a worker
    (4 clients could land 3 on one worker and 1 on the other) and understate what the workers do."""

    def __init__(self, port: int, timeout: float = 120.0):
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> int:
        for attempt in range(2):  # a connection refused or reset: try once more
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"Content-Type": "application/json", "Connection": "close"})
                response = self.conn.getresponse()
                response.read()
                self.close()
                return response.status
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def closed_loop(port: int, bodies: list[bytes], concurrency: int, seconds: float, max_requests: int | None = None,
                on_tick=None) -> Outcome:
    """`concurrency` clients, each sending its next request when the last is answered, until the
    deadline (or `max_requests` in all)."""
    out = Outcome()
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        client = Client(port)
        try:
            while time.monotonic() < deadline:
                n = next(counter)
                if max_requests is not None and n >= max_requests:
                    return
                t = time.monotonic()
                try:
                    status = client.post("/v1/check", bodies[n % len(bodies)])
                except OSError:
                    with lock:
                        out.errors += 1
                    continue
                with lock:
                    out.add(status, time.monotonic() - t)
                    if on_tick is not None:
                        on_tick(sum(out.statuses.values()))
        finally:
            client.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.seconds = time.monotonic() - t0
    return out


def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float, max_clients: int) -> tuple[Outcome, float]:
    """Requests at a fixed `rate` per second for `seconds`, from `max_clients` threads each keeping its
    share of the schedule (a thread that falls behind sends at once; the generator never queues
    more than one request per thread). Returns the outcome and the rate actually offered."""
    out = Outcome()
    lock = threading.Lock()
    t0 = time.monotonic()
    end = t0 + seconds
    per_thread = rate / max_clients
    sent = [0]

    def client_loop(i: int) -> None:
        client = Client(port)
        k = 0
        try:
            while True:
                due = t0 + (i / max_clients + k) / per_thread
                if due >= end:
                    return
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t = time.monotonic()
                try:
                    status = client.post("/v1/check", bodies[(i + k * max_clients) % len(bodies)])
                except OSError:
                    with lock:
                        out.errors += 1
                    k += 1
                    continue
                with lock:
                    out.add(status, time.monotonic() - t)
                    sent[0] += 1
                k += 1
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(max_clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.seconds = time.monotonic() - t0
    return out, (sent[0] + out.errors) / out.seconds


def _children(pid: int) -> list[int]:
    """All descendants of a process (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (Linux /proc)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def start_server(port: int, workers: int, max_pending: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "unspin.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--max-pending", str(max_pending)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"unspin serve exited: {proc.stderr.read()[-2000:]}")
        try:
            if _get(port, "/readyz") == 200:
                # with several workers, each loads its models: wait until a few requests in a row see ready
                if all(_get(port, "/readyz") == 200 for _ in range(3 * workers)):
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"unspin serve was not ready within {READY_TIMEOUT_S} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


def texts(n: int, words: int) -> list[str]:
    """`n` held-out articles cut to `words` words (at a sentence end where one is near)."""
    out = []
    for article in iter_articles("heldout", min_words=words, max_words=words + 300):
        cut = " ".join(article.split(" ")[:words])
        end = cut.rfind(". ")
        out.append(cut[:end + 1] if end > len(cut) * 0.8 else cut)
        if len(out) == n:
            break
    return out


def run(args: argparse.Namespace) -> int:
    log = stderr_log("bench serve") if progress_enabled(args.progress) else (lambda _m: None)
    bodies = [json.dumps({"text": t}).encode() for t in texts(args.texts, args.words)]
    if not bodies:
        raise InputError(f"no held-out articles of {args.words} words found in {default_data_dir()} "
                         f"(set UNSPIN_DATA to the shared data folder)")
    n_words = sum(len(json.loads(b)["text"].split()) for b in bodies) / len(bodies)
    log(f"{len(bodies)} texts of {n_words:.0f} words on average")
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other work)",
                     "words_per_text": round(n_words), "distinct_texts": len(bodies), "concurrency": args.concurrency,
                     "max_pending_per_worker": args.max_pending, "runs": []}
    worker_counts = [int(w) for w in args.workers.split(",")]
    for i, workers in enumerate(worker_counts):
        proc = start_server(args.port, workers, args.max_pending)
        try:
            log(f"{workers} worker(s): ready, rss {rss_mb(proc.pid):.0f} MB; warming up")
            closed_loop(args.port, bodies, args.concurrency, 5.0)
            closed = {**closed_loop(args.port, bodies, args.concurrency, args.duration).summary(),
                      "load_average_after": round(os.getloadavg()[0], 1)}
            log(f"{workers} worker(s): closed loop {closed}")
            rate = 2 * closed["ok_per_s"]
            over, offered = open_loop(args.port, bodies, rate, args.overload_seconds, args.max_clients)
            over_s = {**over.summary(), "target_rate": round(rate, 2), "offered_rate": round(offered, 2),
                      "load_average_after": round(os.getloadavg()[0], 1)}
            log(f"{workers} worker(s): at 2x ({rate:.1f}/s) {over_s}")
            run_result = {"workers": workers, "closed_loop": closed, "overload_2x": over_s}
            if i == len(worker_counts) - 1 and args.memory_requests:
                samples: list[tuple[int, float]] = []
                last = [time.monotonic()]

                def tick(done: int) -> None:  # called under the loop's lock after each answer
                    if time.monotonic() - last[0] >= args.memory_every:
                        last[0] = time.monotonic()
                        samples.append((done, rss_mb(proc.pid)))

                samples.append((0, rss_mb(proc.pid)))
                mem = closed_loop(args.port, bodies, args.concurrency, args.memory_seconds, args.memory_requests,
                                  on_tick=tick)
                samples.append((sum(mem.statuses.values()), rss_mb(proc.pid)))
                run_result["memory"] = {**mem.summary(), "rss_mb": [(n, round(m, 1)) for n, m in samples]}
                log(f"memory: {run_result['memory']['rss_mb']}")
            results["runs"].append(run_result)
        finally:
            stop_server(proc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    md = render_md(results)
    (out / "serve.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


def render_md(r: dict) -> str:
    lines = ["# unspin serve: load over loopback", "",
             f"`unspin bench serve` on {r['machine']}: POST /v1/check with {r['words_per_text']}-word held-out "
             f"articles ({r.get('distinct_texts', '?')} distinct, sent in turn), {r['concurrency']} clients back to back (closed loop), then an open loop at twice the "
             f"rate the closed loop sustained. Each worker admits {r['max_pending_per_worker']} requests at once "
             "and sheds the rest with 503.", "",
             "| workers | requests/s | p50 ms | p99 ms | at 2x: offered/s | answered/s | shed (503) | "
             "p50 / p99 ms of answered | machine load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run_ in r["runs"]:
        c, o = run_["closed_loop"], run_["overload_2x"]
        load = f"{c.get('load_average_after', '?')} / {o.get('load_average_after', '?')}"
        lines.append(f"| {run_['workers']} | {c['ok_per_s']} | {c['p50_ms']} | {c['p99_ms']} | {o['offered_rate']} | "
                     f"{o['ok_per_s']} | {o['shed']} of {o['requests']} | {o['p50_ms']} / {o['p99_ms']} | {load} |")
    lines += ["", "Latency is per request as the client sees it: in the closed loop it includes the wait behind the "
              "other clients' requests (a worker checks one text at a time). At 2x, the answered requests wait "
              "behind at most the admitted few, and the rest are refused at once with 503 and Retry-After: the "
              "queue never grows. The machine is shared with other jobs, so the figures vary between runs "
              "(the slowest requests most)."]
    for run_ in r["runs"]:
        if "memory" in run_:
            m = run_["memory"]
            shown = m["rss_mb"][::max(1, len(m["rss_mb"]) // 8)]
            if shown[-1] != m["rss_mb"][-1]:
                shown.append(m["rss_mb"][-1])
            series = ", ".join(f"{n:,}: {mb:.0f}" for n, mb in shown)
            low, high = min(mb for _, mb in m["rss_mb"]), max(mb for _, mb in m["rss_mb"])
            lines += ["", f"Memory ({run_['workers']} workers, all server processes, resident MB after N requests): "
                          f"{series} (all {len(m['rss_mb'])} samples between {low:.0f} and {high:.0f} MB). "
                          f"{m['requests']:,} requests in {m['seconds']:.0f} s ({m['ok']:,} answered, {m['shed']} "
                          f"shed, p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms)."]
    return "\n".join(lines) + "\n"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin bench serve`."""
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated (default 1,2)")
    ap.add_argument("--port", type=int, default=8765, help="loopback port for the server (default 8765)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the closed loop (default 60)")
    ap.add_argument("--concurrency", type=int, default=4, help="closed-loop clients (default 4)")
    ap.add_argument("--overload-seconds", type=float, default=30.0, help="seconds of the 2x open loop (default 30)")
    ap.add_argument("--max-clients", type=int, default=32, help="connections of the open loop (default 32)")
    ap.add_argument("--max-pending", type=int, default=4, help="the server's --max-pending (default 4)")
    ap.add_argument("--memory-requests", type=int, default=10_000, help="requests of the memory run (default 10000;"
                    " 0: skip)")
    ap.add_argument("--memory-seconds", type=float, default=300.0, help="... or at most this long (default 300)")
    ap.add_argument("--memory-every", type=float, default=15.0, help="seconds between memory samples (default 15)")
    ap.add_argument("--texts", type=int, default=1000, help="distinct texts, sent in turn (default 1000: the decoder's caches see new text throughout)")
    ap.add_argument("--words", type=int, default=500, help="words per text (default 500)")
    ap.add_argument("--out", default="bench", help="folder for serve.json and serve.md (default bench/)")
    add_progress_option(ap)
