"""Benchmark for `unspin scan`: throughput, memory and spin-family quality on a mixed corpus.

    unspin bench scan [--n-docs 5000] [--out bench/] [--seed 0]

Corpus (JSONL, one row per document): held-out corpus paragraphs (60-400 words, see
unspin.build.corpus) and, mixed in at random positions, spun copies of some of them: 2-4 copies
per source, each spun by the Moby spinner (unspin.build.spinner) to 10, 25 or 40% of its words.
Half of the copied sources are in the corpus too; the other half are only in a trace index given
with --index (so those copies can be linked only through it, or to each other). The scan checks
with a channel built WITHOUT Moby (the benchmark channel of bench core), so that the alignment
does not know the spinner's dictionary.

Measured, each run in its own process: wall time, and CPU seconds of all its processes (the
machine may be shared; CPU time per word is the per-core figure); documents/s and words/s of the
whole scan (reading, checking, fingerprints, index links, families, writing) with 1 and 2 local
workers and on a `distributed.LocalCluster` of 2 worker processes, against `unspin check --jsonl`
on the same corpus (one process); peak memory of the main process and of the largest worker (from
the run's summary.json; forked workers count the model pages they share with the main process);
family precision and recall over document pairs (pairs in one family against pairs of one source's
group, per spin rate), beside datasketch MinHashLSH near-duplicate clustering (word 5-grams,
Jaccard threshold 0.5, the usual setting of dedup pipelines) on the same corpus.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from ..fingerprint import words_of
from ..index import Index
from ..runtime import tune_garbage_collector
from ..scan import WORK_DIR, ScanSpec, UnionFind, read_output, scan
from .metrics import rate, word_edits
from .corpus import add_progress_option, iter_paragraphs, progress_enabled, stderr_log

logger = logging.getLogger(__name__)

FRACTIONS = (0.10, 0.25, 0.40)
PEER_THRESHOLD = 0.5
DEFAULT_STEPS = ("check", "local-1", "local-2", "dask-2", "peer")


def _paragraphs(n: int, min_words: int = 60, max_words: int = 400) -> list[str]:
    out, seen = [], set()
    for p in itertools.chain(iter_paragraphs("heldout"), iter_paragraphs("train")):
        n_words = len(p.split())
        if not min_words <= n_words <= max_words or p[:80] in seen:
            continue
        seen.add(p[:80])
        out.append(p)
        if len(out) >= n:
            break
    return out


def make_corpus(n_docs: int, seed: int, path: Path, copy_share: float = 0.3) -> tuple[list[dict], list[dict]]:
    """Write the benchmark corpus to `path`; returns (its rows with their truth, the indexed sources).

    A row's truth: `group` (the source it comes from, or None for a document with no copy),
    `fraction` (of words spun; 0 for a source)."""
    from .spinner import Spinner

    rng = random.Random(seed)
    n_copies_total = int(n_docs * copy_share)
    n_sources = max(1, n_copies_total // 3)
    paras = _paragraphs(n_docs + n_sources)
    rng.shuffle(paras)
    spinner = Spinner.from_name("moby")
    rows: list[dict] = []
    indexed: list[dict] = []
    copies: list[dict] = []
    for s in range(n_sources):
        text = paras[s]
        in_corpus = s % 2 == 0
        if in_corpus:
            rows.append({"id": f"src{s}", "text": text, "group": f"g{s}", "fraction": 0.0})
        else:
            indexed.append({"id": f"ref{s}", "text": text})
        for c in range(rng.randint(2, 4)):
            frac = rng.choice(FRACTIONS)
            spun = spinner.spin_to_fraction(text, frac, seed=seed * 100003 + s * 10 + c).text
            copies.append({"id": f"src{s}-copy{c}", "text": spun, "group": f"g{s}", "fraction": frac,
                           "source_indexed": not in_corpus})
    n_plain = max(0, n_docs - len(rows) - len(copies))
    rows += [{"id": f"doc{i}", "text": t, "group": None, "fraction": 0.0}
             for i, t in enumerate(paras[n_sources:n_sources + n_plain])]
    rng.shuffle(rows)
    for c in copies:  # copies at random positions among the other documents
        rows.insert(rng.randrange(len(rows) + 1), c)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    return rows, indexed


def pair_scores(truth_groups: dict[str, str | None], predicted: dict[str, str | None],
                fraction: dict[str, float]) -> dict:
    """Precision and recall over document pairs: a pair is predicted when both documents share a
    family, true when both come from one source; recall also per spin rate (the larger of the two)."""
    def pairs(groups: dict[str, str | None]) -> set[tuple[str, str]]:
        members = defaultdict(list)
        for doc, g in groups.items():
            if g is not None:
                members[g].append(doc)
        return {tuple(sorted(p)) for m in members.values() for p in itertools.combinations(m, 2)}

    truth, pred = pairs(truth_groups), pairs(predicted)
    hit = truth & pred
    out = {"true_pairs": len(truth), "predicted_pairs": len(pred),
           "precision": round(len(hit) / len(pred), 4) if pred else None,
           "recall": round(len(hit) / len(truth), 4) if truth else None, "recall_by_fraction": {}}
    for frac in FRACTIONS:
        group = {p for p in truth if max(fraction[p[0]], fraction[p[1]]) == frac}
        if group:
            out["recall_by_fraction"][f"{int(frac * 100)}%"] = round(len(group & pred) / len(group), 4)
    return out


def peer_families(rows: list[dict], threshold: float = PEER_THRESHOLD, num_perm: int = 128) -> dict[str, str | None]:
    """Near-duplicate clusters of datasketch MinHashLSH over word 5-grams (connected components)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = {}
    for r in rows:
        toks = [n for _, n in words_of(r["text"])]
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch({" ".join(toks[i:i + 5]).encode() for i in range(max(len(toks) - 4, 1))})
        sigs[r["id"]] = m
        lsh.insert(r["id"], m)
    uf = UnionFind()
    for doc, m in sigs.items():
        for other in lsh.query(m):
            if other != doc:
                uf.union(doc, other)
    roots = {doc: uf.find(doc) for doc in sigs}
    sizes = defaultdict(int)
    for root in roots.values():
        sizes[root] += 1
    return {doc: (root if sizes[root] > 1 else None) for doc, root in roots.items()}


def restoration_scores(rows: list[dict], indexed: list[dict], out: Path) -> dict:
    """Pooled WER against the original of the spun copies that a scan put in a family (and of the
    unspun sources in the corpus that are members of one: their own text): the copy as
    it is, restored by the decoder alone (the work files' `restored`), and restored with its family
    (the output's `restored`: from the other members, or from the indexed source); by the family's
    kind of source and by spin rate. A copy the scan did not judge counts as left as it is."""
    originals = {r["group"]: r["text"] for r in rows if r["group"] is not None and r["fraction"] == 0.0}
    originals.update({f"g{d['id'].removeprefix('ref')}": d["text"] for d in indexed})
    # the spun copies, and the unspun sources in the corpus (what restoring them changes is an error)
    copies = {r["id"]: r for r in rows if r["group"] is not None}
    alone = {}
    for path in sorted((out / WORK_DIR).glob("part-*.parquet")):
        for r in pq.read_table(path, columns=["id", "restored"]).to_pylist():
            if r["id"] in copies:
                alone[r["id"]] = r["restored"]
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for r in read_output(out).select(["id", "family_id", "family_source_kind", "restored", "family_changes"]).to_pylist():
        c = copies.get(r["id"])
        if c is None or r["family_id"] is None:
            continue
        reference = originals[c["group"]]
        edits_spun, words = word_edits(c["text"], reference)
        edits_alone, _ = word_edits(alone.get(r["id"]) or c["text"], reference)
        edits_family, _ = word_edits(r["restored"] or c["text"], reference)
        keys = (("all", f"from {r['family_source_kind']}", f"spun {int(c['fraction'] * 100)}%") if c["fraction"]
                else ("unspun sources (members)",))
        for key in keys:
            acc = sums[key]
            for k, v in enumerate((1, words, edits_spun, edits_alone, edits_family, r["family_changes"] or 0)):
                acc[k] += v
    return {key: {"copies": n, "words": w, "wer_spun": round(rate(es, w), 4), "wer_alone": round(rate(ea, w), 4),
                  "wer_family": round(rate(ef, w), 4), "family_changes": fc}
            for key, (n, w, es, ea, ef, fc) in sorted(sums.items())}


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and all its processes) of a command run to its end.
    CPU time is what the figures per core use: the machine may be shared."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[2])
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed_together(commands: list[list[str]]) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds with all its processes) of each command, all started at once: a
    shared machine slows them alike, so the ratio of their CPU figures holds where one-after-the-other
    runs differ by 10-20% from run to run."""
    t = time.perf_counter()
    running = {}
    for k, cmd in enumerate(commands):
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2])
        running[proc.pid] = (k, proc)
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(commands)
    failed = []
    while running:
        pid, status, usage = os.wait4(-1, 0)  # the usage of that process and of the children it waited for
        if pid not in running:
            continue
        k, proc = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
        out[k] = (time.perf_counter() - t, usage.ru_utime + usage.ru_stime)
        if proc.returncode != 0:
            failed.append(commands[k])
    if failed:
        raise subprocess.CalledProcessError(1, failed[0])
    return out


def child(config: str, corpus: str, out: str, channel: str, index: str) -> None:
    """One scan run in its own process (`python -m unspin.build.bench_scan CONFIG ...`): local-N
    (N worker processes) or dask-N (a `distributed.LocalCluster` of N worker processes)."""
    kind, n = config.split("-")
    tune_garbage_collector()  # as `unspin scan` does
    spec = ScanSpec(channel=channel, index=index)
    if kind == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            scan([corpus], out, spec, scheduler=client)
    else:
        scan([corpus], out, spec, workers=int(n))


def run(n_docs: int, out_dir: Path, seed: int = 0, progress: bool = False, keep: str | None = None,
        steps: tuple[str, ...] = DEFAULT_STEPS, scale_to: int = 100_000, check_sample: int | None = None,
        paired: bool = False) -> dict:
    """Run the benchmark steps in order ("check": `check --jsonl` on the first `check_sample` rows,
    None: all; "peer": MinHashLSH; "local-N", "dask-N": scans) and write <out_dir>/scan.{json,md}
    after each; returns the results. `paired`: each scan runs at the same time as a `check --jsonl`
    of the same rows, for a ratio per core that the machine's other load touches alike."""
    from .bench_core import build_bench_channel

    log = stderr_log("bench scan") if progress else logger.info
    t0 = time.time()
    tmp_holder = tempfile.TemporaryDirectory()
    tmp = Path(keep) if keep else Path(tmp_holder.name)
    tmp.mkdir(parents=True, exist_ok=True)
    corpus_path = tmp / "corpus.jsonl"
    rows, indexed = make_corpus(n_docs, seed, corpus_path)
    n_words = sum(len(words_of(r["text"])) for r in rows)
    log(f"corpus: {len(rows):,} documents, {n_words:,} words, {sum(r['group'] is not None for r in rows):,} in "
        f"source groups, {len(indexed)} sources only in the index ({time.time() - t0:.0f}s)")
    channel, ch_info = build_bench_channel(("moby",))
    channel_path = tmp / "channel-without-moby.npz"
    channel.save(channel_path)
    index_path = tmp / "refs.sqlite"
    for stale in tmp.glob("refs.sqlite*"):
        stale.unlink()
    with Index(str(index_path), channel=channel) as idx:
        idx.add(indexed)
    result: dict = {"n_docs": len(rows), "n_words": n_words, "seed": seed, "channel": ch_info.get("channel"),
                    "indexed_sources": len(indexed), "runs": {}, "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()[0]}

    truth = {r["id"]: r["group"] for r in rows}
    fraction = {r["id"]: r["fraction"] for r in rows}
    outputs = {}

    def save() -> None:  # after every step: a long run that is cut short keeps what it measured
        first = next(iter(outputs.values()), None)
        result["identical_families_across_runs"] = (all(o == first for o in outputs.values())
                                                    if len(outputs) > 1 else None)
        result["total_s"] = round(time.time() - t0, 1)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "scan.json").write_text(json.dumps(result, indent=2) + "\n")
        (out_dir / "scan.md").write_text(render_md(result))

    sample, sample_path, sample_words = rows, corpus_path, n_words
    if check_sample and check_sample < len(rows) and ("check" in steps or paired):
        sample = rows[:check_sample]  # a fixed sample: the first rows of the corpus
        sample_path = tmp / "check-sample.jsonl"
        with open(sample_path, "w", encoding="utf-8") as f:
            for r in sample:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
        sample_words = sum(len(words_of(r["text"])) for r in sample)
    check_cmd = [sys.executable, "-m", "unspin.cli", "check", "--jsonl", str(sample_path), "-o",
                 str(tmp / "check.jsonl"), "--channel", str(channel_path), "--no-progress"]

    def check_figures(wall: float, cpu: float) -> dict:
        return {"n_docs": len(sample), "n_words": sample_words, "seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1), "docs_per_s": round(len(sample) / wall, 1),
                "words_per_s": round(sample_words / wall), "words_per_cpu_s": round(sample_words / cpu)}

    for step in steps:
        if step == "check":
            wall, cpu = _timed(check_cmd)
            result["check_jsonl"] = check_figures(wall, cpu)
            log(f"check --jsonl ({len(sample):,} documents): {wall:.0f}s, {cpu:.0f} CPU s")
        elif step == "peer":
            t = time.perf_counter()
            result["peer"] = pair_scores(truth, peer_families(rows), fraction)
            result["peer"]["seconds"] = round(time.perf_counter() - t, 1)
            log(f"peer: {result['peer']}")
        else:
            config = step
            out = tmp / f"out-{config}"
            if out.exists():
                shutil.rmtree(out)
            scan_cmd = [sys.executable, "-m", "unspin.build.bench_scan", config, str(corpus_path), str(out),
                        str(channel_path), str(index_path)]
            together = None
            if paired:
                (wall, cpu), (check_wall, check_cpu) = timed_together([scan_cmd, check_cmd])
                together = check_figures(check_wall, check_cpu)
                log(f"check --jsonl alongside: {check_wall:.0f}s, {check_cpu:.0f} CPU s")
            else:
                wall, cpu = _timed(scan_cmd)
            summary = json.loads((out / "summary.json").read_text())
            table = read_output(out).select(["id", "family_id"]).to_pylist()
            predicted = {r["id"]: r["family_id"] for r in table}
            outputs[config] = predicted
            result["runs"][config] = {
                "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "docs_per_s": round(len(rows) / wall, 1),
                "words_per_s": round(n_words / wall), "words_per_cpu_s": round(n_words / cpu),
                "peak_memory_mb": summary["peak_memory_mb"], "candidate_pairs": summary["candidate_pairs"],
                "aligned_pairs": summary.get("aligned_pairs"), "verified_pairs": summary["verified_pairs"],
                "families": summary["families"], "families_scores": pair_scores(truth, predicted, fraction),
                "check_alongside": together}
            log(f"{config}: {wall:.0f}s, {cpu:.0f} CPU s, {result['runs'][config]['families_scores']}")
            if "restoration" not in result:  # the same in every run (families identical)
                result["restoration"] = restoration_scores(rows, indexed, out)
                result["restoration_run"] = config
                log(f"restoration: {result['restoration']['all']}")
            if scale_to and scale_to > len(rows) and "family_scale" not in result:
                factor = max(1, round(scale_to / len(rows)))
                proc = subprocess.run([sys.executable, "-m", "unspin.build.bench_scan", "family-scale",
                                       str(out / WORK_DIR), str(factor)], check=True, capture_output=True,
                                      text=True, cwd=Path(__file__).resolve().parents[2])
                result["family_scale"] = json.loads(proc.stdout.strip().splitlines()[-1])
                log(f"family candidates at x{factor}: {result['family_scale']}")
        save()
    tmp_holder.cleanup()
    return result


def render_md(r: dict) -> str:
    lines = ["# scan benchmark", "",
             f"{r['n_docs']:,} documents ({r['n_words']:,} words): held-out corpus paragraphs with spun copies "
             f"(Moby spinner, 10/25/40% of words, 2-4 copies per source) at random positions; "
             f"{r['indexed_sources']} of the copied sources only in the trace index (`--index`). Channel without "
             f"Moby. Machine: {r['cpus']} cores shared with other work (load average {r['load_average']:.1f} at the "
             f"start): wall-clock figures are noisy, CPU seconds (all processes of a run) are not.", "",
             "| run | wall s | CPU s | docs/s (wall) | words/s (wall) | words per CPU s | peak MB main / worker | "
             "family precision | recall | recall 10% / 25% / 40% |", "|---|---|---|---|---|---|---|---|---|---|"]
    ch = r.get("check_jsonl")
    if ch:
        scope = "" if ch.get("n_docs", r["n_docs"]) == r["n_docs"] else f", first {ch['n_docs']:,} documents"
        lines.append(f"| `check --jsonl` (1 process, no families{scope}) | {ch['seconds']} | {ch['cpu_seconds']} | "
                     f"{ch['docs_per_s']} | {ch['words_per_s']:,} | {ch['words_per_cpu_s']:,} | | | | |")
    for name, run_ in r["runs"].items():
        f = run_["families_scores"]
        mem = run_["peak_memory_mb"]
        by = " / ".join(f"{v:.3f}" for v in f["recall_by_fraction"].values())
        lines.append(f"| scan {name} | {run_['seconds']} | {run_['cpu_seconds']} | {run_['docs_per_s']} | "
                     f"{run_['words_per_s']:,} | {run_['words_per_cpu_s']:,} | {mem.get('main')} / "
                     f"{mem.get('worker') or '-'} | {f['precision']} | {f['recall']} | {by} |")
    p = r.get("peer")
    if p:
        by = " / ".join(f"{v:.3f}" for v in p["recall_by_fraction"].values())
        lines.append(f"| datasketch MinHashLSH 5-grams, threshold {PEER_THRESHOLD} | {p['seconds']} | | | | | | "
                     f"{p['precision']} | {p['recall']} | {by} |")
    if r["runs"]:
        same = r.get("identical_families_across_runs")
        lines += ["", (f"Families identical across the runs: {same}. " if same is not None else "One scan run. ")
                  + f"Pairs: {next(iter(r['runs'].values()))['families_scores']['true_pairs']:,} true document pairs."]
    if ch and r["runs"]:
        ratios = [f"{name} {run_['words_per_cpu_s'] / ch['words_per_cpu_s']:.2f}" for name, run_ in r["runs"].items()]
        lines += ["", "Throughput per core against `check --jsonl` (words per CPU s, scan / check): "
                  + ", ".join(ratios) + " (target: at least 0.80)."]
    alongside = {name: run_ for name, run_ in r["runs"].items() if run_.get("check_alongside")}
    if alongside:
        lines += ["", "Each scan run at the same time as a `check --jsonl` of the same rows (both slowed alike by "
                      "the machine's other load):", "",
                  "| scan | scan words per CPU s | check CPU s | check words per CPU s | scan / check |",
                  "|---|---|---|---|---|"]
        for name, run_ in alongside.items():
            c = run_["check_alongside"]
            lines.append(f"| {name} | {run_['words_per_cpu_s']:,} | {c['cpu_seconds']} | {c['words_per_cpu_s']:,} | "
                         f"{run_['words_per_cpu_s'] / c['words_per_cpu_s']:.2f} |")
    rs = r.get("restoration")
    if rs:
        lines += ["", f"Restoration of the spun copies in a family (pooled WER against the original; the `scan "
                      f"{r['restoration_run']}` output):", "",
                  "| copies | n | words | WER as spun | restored alone (decoder) | restored with the family | "
                  "family changes |", "|---|---|---|---|---|---|---|"]
        for key, v in rs.items():
            lines.append(f"| {key} | {v['copies']:,} | {v['words']:,} | {v['wer_spun']:.4f} | {v['wer_alone']:.4f} | "
                         f"{v['wer_family']:.4f} | {v['family_changes']:,} |")
    fs = r.get("family_scale")
    if fs:
        lines += ["", f"Family candidate step at {fs['documents']:,} documents (this corpus's band keys replicated "
                      f"with a salt per copy, {fs['band_keys']:,} keys): {fs['candidate_pairs']:,} candidate pairs in "
                      f"{fs['seconds']} s, peak memory {fs['peak_memory_mb']:,} MB."]
    lines += ["", "Notes:", "",
              "* Precision counts document pairs: one false link between two families of five members counts 25 "
              "false pairs. With seed 0 the false links left are Wikipedia paragraphs that really share a "
              "passage (one text in two articles), and templated paragraphs (moons of Uranus, sports playoffs, "
              "film blurbs) whose few numbers agree; templated census paragraphs, which differ in their numbers, "
              "are kept apart by the number rule (`scan.MIN_NUMBER_AGREEMENT`).",
              "* The near-duplicate peer finds only lightly spun copies: a copy spun at 25% keeps few of its "
              "source's word 5-grams.",
              "* CPU seconds of a run include loading the models in every process (about 2-4 s each); the Dask "
              "run adds its scheduler, worker start-up, sending the texts to the workers and the band join as a "
              "dask.bag shuffle (about 14 CPU s at 5,000 documents against 0.3 s for the local numpy join); it "
              "pays off only with more machines.",
              "* Restoration with the family: \"from index\" copies are restored from their indexed source "
              "(`--index`), \"from member\" copies by the vote of the other members (`scan.sibling_votes`; the "
              "original is a member when its source is in the corpus).", ""]
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin bench scan`."""
    ap.add_argument("--n-docs", type=int, default=5000, help="documents in the corpus (default 5000)")
    ap.add_argument("--out", default="bench", help="folder for scan.json and scan.md (default bench/)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--keep", help="keep the corpus, index and outputs in this folder")
    ap.add_argument("--steps", default=",".join(DEFAULT_STEPS),
                    help="steps in order, comma-separated: check (check --jsonl), local-N (scan with N processes), "
                         "dask-N (scan on a LocalCluster of N workers), peer (datasketch MinHashLSH)")
    ap.add_argument("--check-sample", type=int,
                    help="run check --jsonl on the first N documents only (default: all)")
    ap.add_argument("--paired", action="store_true",
                    help="run a check --jsonl (of the same rows as the check step) alongside each scan")
    add_progress_option(ap)


def run_command(args: argparse.Namespace) -> int:
    """`unspin bench scan`: run, print the Markdown table, write bench/scan.{json,md}."""
    result = run(args.n_docs, Path(args.out), args.seed, progress_enabled(args.progress), args.keep,
                 tuple(args.steps.split(",")), check_sample=args.check_sample,
                 paired=args.paired)
    print(render_md(result))
    return 0


def family_scale(work_dir: str, factor: int, seed: int = 0) -> dict:
    """The candidate step of the family search at `factor` times the corpus of a finished scan:
    its band keys replicated with a salt per copy (the same bucket structure, no meeting across
    copies), joined as a scan does (`band_arrays`, `pairs_from_arrays`). Time and peak memory of
    this process; run it in its own process (`python -m unspin.build.bench_scan family-scale`)."""
    import numpy as np

    from ..scan import band_arrays, pairs_from_arrays

    keys, docs = band_arrays(sorted(Path(work_dir).glob("part-*.parquet")))
    rng = np.random.default_rng(seed)
    n_docs = int(docs.max()) + 1 if len(docs) else 0
    salts = rng.integers(1, 2**62, size=factor, dtype=np.int64)
    big_keys = np.concatenate([keys ^ salt for salt in salts])
    big_docs = np.concatenate([docs + i * n_docs for i in range(factor)])
    del keys, docs
    t = time.perf_counter()
    pairs = pairs_from_arrays(big_keys, big_docs)
    seconds = time.perf_counter() - t
    return {"documents": n_docs * factor, "band_keys": int(len(big_keys)), "candidate_pairs": len(pairs),
            "seconds": round(seconds, 1),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


if __name__ == "__main__":  # one run of the benchmark, in its own process (see `child`, `family_scale`)
    if sys.argv[1] == "family-scale":
        print(json.dumps(family_scale(sys.argv[2], int(sys.argv[3]))))
    else:
        child(*sys.argv[1:6])
