"""Benchmark for `trace`: find the source of spun copies in an index of corpus paragraphs.

    unspin bench trace [--n-docs 20000] [--n-queries 200] [--out bench/]

Documents are held-out corpus paragraphs (>= 30 words), one document each. Queries:
spun copies (Moby spinner) of indexed documents at 10/25/40/60% changed words, the
real spun/original pairs of the dev set (their originals are indexed too), and genuine
held-out paragraphs that are not in the index (any match is a false match). The peer is
a plain datasketch MinHashLSH over raw word 5-gram shingles, run on the same data.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from ..fingerprint import words_of
from ..index import Index
from ..trace import trace
from .corpus import add_progress_option, default_data_dir, iter_paragraphs, progress_enabled, stderr_log
from .spinner import Spinner

logger = logging.getLogger(__name__)

FRACTIONS = (0.10, 0.25, 0.40, 0.60)


def _paragraphs(n: int, min_words: int = 30) -> list[str]:
    """Distinct paragraphs: held-out ones first, then the LM's training split (trace learns
    nothing from the corpora, so any English text serves as reference documents)."""
    out, seen = [], set()
    for p in itertools.chain(iter_paragraphs("heldout"), iter_paragraphs("train")):
        if len(p.split()) < min_words or len(p.split()) > 400:
            continue
        key = p[:80]
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
        if len(out) >= n:
            break
    return out


class Peer:
    """Plain MinHashLSH over raw word 5-grams (the usual near-duplicate detector)."""

    def __init__(self, threshold: float = 0.3, num_perm: int = 128):
        from datasketch import MinHashLSH

        self.num_perm = num_perm
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.sigs = {}

    def _sig(self, text: str):
        from datasketch import MinHash

        toks = [n for _, n in words_of(text)]
        sh = {" ".join(toks[i:i + 5]).encode() for i in range(max(len(toks) - 4, 1))}
        m = MinHash(num_perm=self.num_perm, seed=1)
        m.update_batch(sh)
        return m

    def add(self, doc_id: str, text: str) -> None:
        m = self._sig(text)
        self.sigs[doc_id] = m
        self.lsh.insert(doc_id, m)

    def query(self, text: str, top: int = 5) -> list[str]:
        m = self._sig(text)
        found = self.lsh.query(m)
        return sorted(found, key=lambda d: -m.jaccard(self.sigs[d]))[:top]


def _rank(ids: list[str], gold: str) -> int | None:
    return ids.index(gold) + 1 if gold in ids else None


def run(n_docs: int, n_queries: int, out_dir: Path, seed: int = 0, index_path: str | None = None,
        progress: bool = False) -> dict:
    """Run the benchmark and write <out_dir>/trace.{json,md}; returns the results.  `progress`: show
    progress bars and messages on stderr (otherwise messages go to this module's logger)."""
    log = stderr_log("bench trace") if progress else logger.info
    rng = random.Random(seed)
    t0 = time.time()
    paras = _paragraphs(n_docs + n_queries)
    docs, unrelated = paras[:n_docs], paras[n_docs:n_docs + n_queries]
    with open(default_data_dir() / "dev" / "real_pairs.jsonl", encoding="utf-8") as f:
        real = [json.loads(line) for line in f if line.strip()]
    log(f"read {len(docs):,} documents, {len(unrelated)} unrelated queries, {len(real)} real pairs "
        f"({time.time() - t0:.0f}s)")

    tmp = None
    if index_path is None:
        tmp = tempfile.TemporaryDirectory()
        index_path = os.path.join(tmp.name, "bench.sqlite")
    all_docs = [{"id": f"p{i}", "text": t} for i, t in enumerate(docs)]
    all_docs += [{"id": f"real:{r['id']}", "text": r["original"]} for r in real]
    idx = Index(index_path)
    t = time.time()
    with tqdm(total=len(all_docs), desc="index", unit="doc", file=sys.stderr, dynamic_ncols=True, leave=False,
              disable=not progress) as bar:
        idx.add(all_docs, progress=lambda n: bar.update(n - bar.n))
    build_s = time.time() - t
    stats = idx.stats()

    peer = Peer()
    t = time.time()
    for d in tqdm(all_docs, desc="peer index", unit="doc", file=sys.stderr, dynamic_ncols=True, leave=False,
                  disable=not progress):
        peer.add(d["id"], d["text"])
    peer_build_s = time.time() - t

    spinner = Spinner.from_name("moby")
    picks = rng.sample(range(len(docs)), min(n_queries, len(docs)))
    queries = []  # (group, text, gold or None)
    for frac in FRACTIONS:
        for i in picks:
            queries.append((f"spun {int(frac * 100)}%", spinner.spin_to_fraction(docs[i], frac, seed=seed + i).text,
                            f"p{i}"))
    for r in real:
        queries.append(("real pairs", r["spun"], f"real:{r['id']}"))
    for u in unrelated:
        queries.append(("unrelated", u, None))
    log(f"made {len(queries)} queries")

    groups: dict[str, dict] = {}
    latencies = []
    for group, text, gold in tqdm(queries, desc="queries", unit="query", file=sys.stderr, dynamic_ncols=True,
                                  leave=False, disable=not progress):
        t = time.perf_counter()
        ids = [m.doc_id for m in trace(idx, text, top=5)]
        latencies.append(time.perf_counter() - t)
        peer_ids = peer.query(text)
        g = groups.setdefault(group, {"n": 0, "hit1": 0, "rr": 0.0, "any": 0, "peer_hit1": 0, "peer_any": 0})
        g["n"] += 1
        if gold is None:
            g["any"] += bool(ids)
            g["peer_any"] += bool(peer_ids)
        else:
            r = _rank(ids, gold)
            g["hit1"] += r == 1
            g["rr"] += 1 / r if r else 0.0
            g["peer_hit1"] += _rank(peer_ids, gold) == 1
    idx.close()
    lat = sorted(latencies)
    result = {
        "n_docs": len(all_docs), "n_queries_per_fraction": len(picks), "seed": seed,
        "build_docs_per_s": round(len(all_docs) / build_s, 1), "build_s": round(build_s, 1),
        "peer_build_docs_per_s": round(len(all_docs) / peer_build_s, 1),
        "index_size_mb": round(stats["size_bytes"] / 1e6, 1), "index_words": stats["words"],
        "latency_ms_p50": round(1000 * lat[len(lat) // 2], 1),
        "latency_ms_p99": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "groups": {},
    }
    for name, g in groups.items():
        if name == "unrelated":
            result["groups"][name] = {"n": g["n"], "false_match_rate": round(g["any"] / g["n"], 4),
                                      "peer_false_match_rate": round(g["peer_any"] / g["n"], 4)}
        else:
            result["groups"][name] = {"n": g["n"], "recall_at_1": round(g["hit1"] / g["n"], 4),
                                      "mrr": round(g["rr"] / g["n"], 4),
                                      "peer_recall_at_1": round(g["peer_hit1"] / g["n"], 4)}
    result["total_s"] = round(time.time() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "trace.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "trace.md").write_text(render_md(result))
    if tmp is not None:
        tmp.cleanup()
    return result


def render_md(r: dict) -> str:
    lines = ["# trace benchmark", "",
             f"Index of {r['n_docs']:,} held-out corpus paragraphs (one document each, {r['index_words']:,} words) "
             f"plus the originals of the dev real pairs; {r['n_queries_per_fraction']} indexed documents spun "
             f"(Moby spinner) at each rate. Peer: datasketch MinHashLSH (threshold 0.3, 128 perms) over raw "
             f"word 5-grams, same data.", "",
             "| queries | n | recall@1 | MRR | peer recall@1 |", "|---|---|---|---|---|"]
    for name, g in r["groups"].items():
        if name != "unrelated":
            lines.append(f"| {name} | {g['n']} | {g['recall_at_1']:.3f} | {g['mrr']:.3f} | {g['peer_recall_at_1']:.3f} |")
    u = r["groups"].get("unrelated")
    if u:
        lines += ["", f"Genuine unrelated held-out queries ({u['n']}): false matches {u['false_match_rate']:.3f} "
                      f"(peer {u['peer_false_match_rate']:.3f})."]
    lines += ["", f"Query latency p50 {r['latency_ms_p50']} ms, p99 {r['latency_ms_p99']} ms (one core). "
                  f"Index build {r['build_docs_per_s']:,} docs/s (peer {r['peer_build_docs_per_s']:,} docs/s), "
                  f"index size {r['index_size_mb']} MB.", ""]
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin bench trace`."""
    ap.add_argument("--n-docs", type=int, default=20000, help="corpus paragraphs to index (default 20000)")
    ap.add_argument("--n-queries", type=int, default=200, help="spun queries per rate, and unrelated queries "
                    "(default 200)")
    ap.add_argument("--out", default="bench", help="folder for trace.json and trace.md (default bench/)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--index", help="keep the index here (default: a temporary file)")
    add_progress_option(ap)


def run_command(args: argparse.Namespace) -> int:
    """`unspin bench trace`: run, print the Markdown tables, write bench/trace.{json,md}."""
    result = run(args.n_docs, args.n_queries, Path(args.out), args.seed, args.index,
                 progress=progress_enabled(args.progress))
    print(render_md(result))
    return 0
