"""Scan whole corpora and crawls: every document checked, fingerprinted and grouped into spin families.

    unspin scan crawl.warc.gz rows.jsonl --out results/          # all cores of this machine
    unspin scan rows.parquet --out results/ --scheduler tcp://10.0.0.5:8786   # a Dask cluster

The pipeline is a chain of pure functions, so a process pool and a Dask cluster run the same code:

1. read: `iter_partitions` streams the inputs (`unspin.inputs` readers) into partitions of documents
   numbered in input order (`doc_no`); an unreadable row becomes a record with `error`;
2. check + fingerprint: `scan_partition(spec, part_no, records)` checks each document with the
   `Engine`, takes its spin-robust band keys (`Fingerprinter`) and, with an index, its best
   indexed source; it returns one Arrow table, written as `OUT/_work/part-NNNNN.parquet` (atomically:
   a rerun skips the partitions already there);
3. families: documents sharing at least `min_band_hits` fingerprint bands are candidate pairs
   (`pairs_from_arrays` over numpy arrays, or `candidate_pairs_bag` as a Dask join on the bands);
   each pair is verified by trace's channel-aware alignment and agreeing numbers (`family_match`,
   the same rule for index matches); verified pairs and index matches are joined
   into families by `group_families` (union-find, strongest pairs first, with a size cap so that a
   hub document cannot chain unrelated stories into one giant component);
4. family restoration: each member is aligned with the other copies (and the indexed source) and
   each place where they differ is put to a vote with the decoder and the language model
   (`restore_families`, `sibling_votes`): a word left unspun in one copy restores it in the others;
5. output: `OUT/part-NNNNN.parquet` (one row per document, columns named as in the JSON output, see
   `OUTPUT_SCHEMA`) and `OUT/summary.json`; `render_report` draws an HTML summary of it.
"""
from __future__ import annotations

import bisect
import contextlib
import difflib
import functools
import html
import json
import os
import re
import resource
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .detect import LIKELY_SPUN, SPUN, Engine, Span, VerdictThresholds, apply_spans, with_source_spans
from .fingerprint import TERM_BAND, Fingerprinter, words_at, words_of
from .inputs import (FOLDER_EXTENSIONS, MAX_DOCUMENT_BYTES, BadRow, InputError, atomic_output, check_input,
                     check_new_file_path, iter_input_records)
from .lexicon import Channel
from .lm import LanguageModel
from .runtime import tune_garbage_collector
from .text import count_rewriter_marks, lm_tokens, match_case, repair_rewriter_marks
from .trace import MAX_PHRASE, SourceRestoration, SubstitutionJudge, accepts, source_text, verify

# Documents per partition: one output file each, and the unit of work a process or Dask worker gets.
PARTITION_SIZE = 500
# Spans kept per document in the output (most suspicious first).
TOP_SPANS = 5
# A candidate pair shares at least this many LSH bands (of `fingerprint.KINDS`' 30). Unrelated texts
# share one band of common function-word 3-grams now and then; spun copies share many (bench/scan.md).
MIN_BAND_HITS = 3
# With --index: a document's candidate sources from the index's buckets (most shared bands first),
# and how many of them (most shared word types first) are aligned.
INDEX_CANDIDATES = 10
# How many indexed documents' word types a worker keeps (about 10 kB each).
INDEXED_TYPES_KEPT = 5000
INDEX_VERIFY = 1
# A band bucket holding more documents than this says nothing (boilerplate, very short texts).
MAX_BUCKET = 50
# A pair is a family edge when the shorter text aligns to the longer one with this coverage
# (identical words or substitutions the channel explains; `trace.accepts`, short texts stricter).
FAMILY_MIN_COVERAGE = 0.5
# Before the alignment: the share of the shorter text's word types found in the other one.
# Spun copies keep their function words, names and numbers (> 0.5); unrelated texts share less.
MIN_SHARED_TYPES = 0.3
# Spinners leave numbers alone, while templated texts (census paragraphs, sports tables) share
# their wording and differ in their numbers: a pair is a family edge only when this share of the
# shorter text's numbers appear in the other (every spun pair of bench/scan.md: 1.0; 58 of the 59
# templated pairs that passed the alignment: below 0.7).
MIN_NUMBER_AGREEMENT = 0.8
# The guard against giant components: a family never grows beyond this many documents; a merge
# that would pass it is refused (pairs are merged strongest first, so a hub joins its best family).
MAX_FAMILY = 100
# Candidate pairs per unit of work in the family step, and per round (after a round, pairs already
# linked through verified pairs are skipped).
PAIRS_PER_TASK = 250
PAIRS_PER_ROUND = 2000
# Siblings a member is aligned with when its family is restored from its members (the least spun
# first): a bound on the work in a large family (k members cost k * min(k - 1, this) alignments).
RESTORE_SIBLINGS = 6
# The language model's vote in the family restoration: for the wording it prefers by at least
# LM_MARGIN (log10) in a window of LM_CONTEXT words a side.
LM_MARGIN = 1.0
LM_CONTEXT = 3
# Families per unit of work in the family restoration.
FAMILIES_PER_TASK = 50
# Sites by spun share: those with at least this many judged documents are ranked first.
MIN_SITE_DOCUMENTS = 3
# Spun share in the summary: these verdicts count as spun.
SPUN_VERDICTS = (SPUN, LIKELY_SPUN)

_SPAN_TYPE = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string()),
                        ("suggestion", pa.string()), ("confidence", pa.float64()), ("p_spun", pa.float64())])
_MARKS_TYPE = pa.struct([(k, pa.int64()) for k in count_rewriter_marks("")])
# Columns of a scanned document (the work files add `text` and `bands`).
DOC_FIELDS = [
    ("doc_no", pa.int64()),            # position in the input stream (0-based, over all inputs)
    ("id", pa.string()), ("url", pa.string()), ("date", pa.string()), ("site", pa.string()),
    ("input", pa.string()),            # the input file (and row) the document came from
    ("spin_probability", pa.float64()), ("verdict", pa.string()),
    ("substitutions_per_100", pa.float64()),   # decoded substitutions (posterior >= 0.5) per 100 words
    ("flagged_per_100", pa.float64()),         # words flagged as substituted per 100 words
    ("n_words", pa.int64()), ("spans", pa.list_(_SPAN_TYPE)),
    ("rewriter_marks", _MARKS_TYPE), ("rewriter_marks_per_100", pa.float64()),
    ("language", pa.string()), ("reliable", pa.bool_()), ("warnings", pa.list_(pa.string())),
    ("error", pa.string()),
    # the likely original: the decoder's confident changes, and in a family what the other copies
    # or the indexed source show (`restore_family`); null for a document that cannot be judged
    ("restored", pa.string()),
    # with --index: the indexed document this one is a spun copy of, and the alignment score
    ("indexed_source", pa.string()), ("indexed_score", pa.float64()),
]
FAMILY_FIELDS = [("family_id", pa.string()), ("family_size", pa.int64()),
                 ("family_source", pa.string()),        # the indexed source's id, or the least-spun member's id
                 ("family_source_kind", pa.string()),   # "index" or "member"
                 ("family_changes", pa.int64())]        # changes in `restored` taken from the family
# The work files add the checked text, the band keys and the decoder's changes (the spans that
# `restored` applies before the family step).
WORK_SCHEMA = pa.schema(DOC_FIELDS + [("text", pa.string()), ("bands", pa.list_(pa.int64())),
                                      ("changes", pa.list_(_SPAN_TYPE))])
OUTPUT_SCHEMA = pa.schema(DOC_FIELDS + FAMILY_FIELDS)
WORK_DIR = "_work"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ScanSpec:
    """What every worker needs to check documents: model files (None: the shipped ones) and options.
    Hashable, so that each process loads its tools once (`scan_tools`).

    >>> ScanSpec(min_confidence=0.7).top_spans
    5
    """

    lm: str | None = None
    channel: str | None = None
    index: str | None = None
    thresholds: VerdictThresholds = VerdictThresholds()
    min_confidence: float = 0.5
    time_budget_s: float | None = 300.0
    top_spans: int = TOP_SPANS
    min_band_hits: int = MIN_BAND_HITS
    max_bucket: int = MAX_BUCKET
    family_min_coverage: float = FAMILY_MIN_COVERAGE
    max_family: int = MAX_FAMILY
    restore_siblings: int = RESTORE_SIBLINGS
    family_lm_vote: bool = True


@dataclass
class ScanTools:
    """The loaded collaborators of one worker process."""

    engine: Engine
    fingerprinter: Fingerprinter
    judge: SubstitutionJudge
    index: Any = None   # an `unspin.index.Index` opened read-only, or None
    # The word types of indexed documents by id: each comes back as a candidate for many queries.
    indexed_types: dict[str, frozenset[str]] = field(default_factory=dict)

    def types_of_indexed(self, doc_id: str, text: str) -> frozenset[str]:
        """`word_types` of the indexed document `doc_id` (its `text`), kept for the next queries."""
        types = self.indexed_types.get(doc_id)
        if types is None:
            if len(self.indexed_types) >= INDEXED_TYPES_KEPT:
                del self.indexed_types[next(iter(self.indexed_types))]  # the oldest first
            types = self.indexed_types[doc_id] = word_types(words_of(text))
        return types


class LastTextFingerprinter(Fingerprinter):
    """A `Fingerprinter` that keeps the band keys of the last text: a scan fingerprints each
    document for its families and the index fingerprints it again for its lookup."""

    def __init__(self, channel: Channel):
        super().__init__(channel)
        self.last: tuple[str | None, Any] = (None, None)

    def band_keys(self, text: str) -> tuple[list[tuple[int, int]], int]:
        last_text, keys = self.last  # one tuple: threads sharing the object read a consistent pair
        if last_text is text or last_text == text:
            return keys
        keys = super().band_keys(text)
        self.last = (text, keys)
        return keys


@functools.lru_cache(maxsize=2)
def scan_tools(spec: ScanSpec) -> ScanTools:
    """The engine, fingerprinter, alignment judge and index of `spec`, loaded once per process."""
    channel = Channel.load(spec.channel) if spec.channel else Channel.load_default()
    engine = Engine.load(lm_path=spec.lm, channel=channel, thresholds=spec.thresholds,
                         time_budget_s=spec.time_budget_s)
    fingerprinter = LastTextFingerprinter(channel)
    index = None
    if spec.index:
        from .index import Index  # only with --index: the scan itself needs no database

        index = Index(spec.index, channel=channel, create=False)
        index.fingerprinter = fingerprinter  # the same settings (same channel), and its keys kept
    return ScanTools(engine, fingerprinter, SubstitutionJudge(channel, fingerprinter.canonical), index)


# ---- 1. read ------------------------------------------------------------------------------
def check_inputs(paths: Sequence[str], id_column: str = "id", text_column: str = "text") -> None:
    """Refuse at once (InputError) inputs that cannot be read at all: missing, unknown format, a
    CSV or Parquet file without the id or text column."""
    if not paths:
        raise InputError("give at least one INPUT")
    for path in paths:
        check_input(path, id_column, text_column)


def iter_records(paths: Sequence[str], *, id_column: str = "id", text_column: str = "text",
                 max_bytes: int = MAX_DOCUMENT_BYTES) -> Iterator[dict]:
    """Every row of every input as a record {"doc_no", "id", "text", "url", "date", "input"}, or with
    "error" for a row that cannot be read. HTML is left as is (workers reduce it in parallel).

    >>> [r["id"] for r in iter_records(["rows.jsonl"])]              # doctest: +SKIP
    ['a1', 'a2']
    """
    doc_no = 0
    for path in paths:
        for rec in iter_input_records(path, id_column=id_column, text_column=text_column, max_bytes=max_bytes,
                                      convert_html=False):
            if isinstance(rec, BadRow):
                yield {"doc_no": doc_no, "id": None, "text": None, "input": rec.where, "error": rec.reason}
            else:
                url, date = rec.get("url"), rec.get("date")
                yield {"doc_no": doc_no, "id": rec["id"], "text": rec["text"],
                       "url": url if isinstance(url, str) else None,
                       "date": date if isinstance(date, str) else (None if date is None else str(date)),
                       "input": path if path != "-" else "stdin"}
            doc_no += 1


def iter_partitions(records: Iterable[dict], size: int = PARTITION_SIZE) -> Iterator[tuple[int, list[dict]]]:
    """(partition number, its records) in input order.

    >>> [(n, len(p)) for n, p in iter_partitions(({"doc_no": i} for i in range(5)), 2)]
    [(0, 2), (1, 2), (2, 1)]
    """
    part: list[dict] = []
    part_no = 0
    for rec in records:
        part.append(rec)
        if len(part) >= size:
            yield part_no, part
            part, part_no = [], part_no + 1
    if part:
        yield part_no, part


def count_rows(paths: Sequence[str]) -> int | None:
    """The number of rows of the inputs when it can be had cheaply (for the progress bar's ETA), else None."""
    total = 0
    for path in paths:
        p = Path(path)
        lower = p.name.lower()
        if p.is_dir():
            total += sum(1 for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FOLDER_EXTENSIONS)
        elif lower.endswith(".parquet"):
            total += pq.ParquetFile(path).metadata.num_rows
        elif lower.endswith((".jsonl", ".ndjson", ".csv")):
            with open(path, "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        elif lower.endswith(FOLDER_EXTENSIONS):
            total += 1
        else:
            return None
    return total


# ---- 2. check and fingerprint (one partition: the unit of work) -------------------------
def site_of(url: str | None) -> str | None:
    """The host of a URL, without "www.".

    >>> site_of("https://www.example.org/news/1"), site_of(None)
    ('example.org', None)
    """
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


def band_key(band_no: int, band_hash: int) -> int:
    """One signed 64-bit key for a (band number, 63-bit hash) pair, so that equal bands of
    different band numbers never meet.

    >>> band_key(0, 5) != band_key(1, 5)
    True
    """
    return ((band_hash ^ (band_no * 0x9E3779B97F4A7C15)) & (2**63 - 1))


def scan_document(tools: ScanTools, spec: ScanSpec, record: dict) -> dict:
    """One record's row of the work table: the check result's columns, the text the offsets index,
    and the band keys; a record that cannot be checked gets `error` (the run goes on)."""
    row = {name: None for name, _ in WORK_SCHEMA_FIELDS}
    row.update({k: record.get(k) for k in ("doc_no", "id", "url", "date", "input", "error")})
    row["site"] = site_of(row["url"])
    row["bands"] = []
    if row["error"] is not None:
        return row
    try:
        result = tools.engine.check(record["text"], spec.min_confidence, html=None)
        text = result.text
        keys, _ = tools.fingerprinter.band_keys(text)
        marks = count_rewriter_marks(text)
        spans = sorted(result.suspicious_spans, key=lambda s: (-s.evidence.get("p_spun", s.confidence), s.start))
        row.update({
            "spin_probability": None if result.spin_probability is None else round(result.spin_probability, 4),
            "verdict": result.verdict,
            "substitutions_per_100": round(result.features.get("changes_per_100", 0.0), 4),
            "flagged_per_100": round(result.features.get("flagged_per_100", 0.0), 4),
            "n_words": result.n_words,
            "spans": [span_row(s) for s in sorted(spans[:spec.top_spans], key=lambda s: s.start)],
            "rewriter_marks": marks,
            "rewriter_marks_per_100": round(100.0 * sum(marks.values()) / max(result.n_words, 1), 4),
            "language": result.language, "reliable": result.reliable, "warnings": list(result.warnings),
            "restored": result.restored if result.spin_probability is not None else None,
            "changes": [span_row(s) for s in result.spans
                        if s.suggestion is not None and s.confidence >= spec.min_confidence],
            # LSH bands only: trace's rare-term keys are shared by texts on one topic, not only by copies.
            "text": text, "bands": sorted({band_key(b, h) for b, h in keys if b != TERM_BAND}),
        })
        if tools.index is not None and result.n_words:
            linked = index_source(tools, spec, text)
            if linked is not None:
                row["indexed_source"], row["indexed_score"] = linked
    except Exception as err:  # one bad document must not end a scan of millions
        row.update({"error": f"internal error: {type(err).__name__}: {err}", "bands": [], "text": None,
                    "changes": [], "restored": None})
    return row


def span_row(span: Span) -> dict:
    """A span as a row of the `spans` and `changes` columns.

    >>> span_row(Span(4, 13, "mentioned", "said", 0.91, {"p_spun": 0.97}))["suggestion"]
    'said'
    """
    return {"start": span.start, "end": span.end, "text": span.text, "suggestion": span.suggestion,
            "confidence": span.confidence, "p_spun": span.evidence.get("p_spun")}


WORK_SCHEMA_FIELDS = [(f.name, f.type) for f in WORK_SCHEMA]


def index_source(tools: ScanTools, spec: ScanSpec, text: str) -> tuple[str, float] | None:
    """(id, score) of the indexed document `text` is a spun copy of, by the rule of family pairs:
    the index's candidates sharing at least `spec.min_band_hits` bands, the one sharing the most
    word types aligned (`family_match`). None when there is none."""
    types = word_types(words_of(text))
    ranked = []
    for doc_id, candidate, _ in tools.index.candidate_documents(text, limit=INDEX_CANDIDATES,
                                                                 min_hits=spec.min_band_hits):
        ranked.append((-type_share(types, tools.types_of_indexed(doc_id, candidate)), doc_id, candidate))
    for _, doc_id, candidate in sorted(ranked)[:INDEX_VERIFY]:
        score = family_match(tools.judge, text, candidate, spec.family_min_coverage)
        if score is not None:
            return doc_id, score
    return None


def scan_partition(spec: ScanSpec, part_no: int, records: list[dict]) -> pa.Table:
    """The work table of one partition (`WORK_SCHEMA`): what a process or Dask worker computes.

    >>> table = scan_partition(ScanSpec(), 0, [{"doc_no": 0, "id": "a1", "text": "The plan."}])  # doctest: +SKIP
    >>> table.column("verdict").to_pylist()                                                  # doctest: +SKIP
    ['not spun']
    """
    tools = scan_tools(spec)
    rows = [scan_document(tools, spec, rec) for rec in records]
    return pa.Table.from_pylist(rows, schema=WORK_SCHEMA)


# ---- running partitions: a local process pool or a Dask cluster --------------------------
class LocalRunner:
    """Runs work functions in this process (workers=1) or in a pool of worker processes that inherit
    the tools loaded here (fork) or load them once each."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self.pool = None
        if self.workers > 1:
            import concurrent.futures
            import multiprocessing

            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)

    @property
    def in_flight(self) -> int:
        return 2 * self.workers

    def submit(self, fn: Callable, *args):
        if self.pool is None:
            return _Done(fn(*args))
        return self.pool.submit(fn, *args)

    def peak_worker_mb(self) -> float | None:
        """The peak resident memory of the largest finished worker process (after `close`)."""
        if self.pool is None:
            return None
        return _maxrss_mb(resource.RUSAGE_CHILDREN)

    def close(self, finished: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=finished, cancel_futures=not finished)


class _Done:
    """A finished computation with the interface of a future."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class DaskRunner:
    """Runs the same work functions on a Dask distributed cluster (a scheduler address or a Client)."""

    def __init__(self, scheduler):
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler needs dask and distributed (pip install 'dask[distributed]')") from None
        if isinstance(scheduler, str):
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as err:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None
            self.own = True
        else:
            self.client, self.own = scheduler, False
        self.workers = max(1, sum(self.client.nthreads().values()))
        self.client.run(tune_garbage_collector)  # the workers keep the same caches as local ones

    @property
    def in_flight(self) -> int:
        return 2 * self.workers

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, *args, pure=False)

    def peak_worker_mb(self) -> float | None:
        """The peak resident memory of the largest worker."""
        peaks = self.client.run(_maxrss_mb, resource.RUSAGE_SELF)
        return max(peaks.values()) if peaks else None

    def close(self, finished: bool = False) -> None:
        if self.own:
            self.client.close()


def _maxrss_mb(who: int) -> float:
    """Peak resident memory in MB (getrusage; Linux reports kB)."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def run_bounded(runner, fn: Callable, jobs: Iterable[tuple], on_result: Callable[[tuple, Any], None]) -> None:
    """fn(*job) for every job on `runner`, results handed to `on_result(job, result)` in job order,
    with at most `runner.in_flight` jobs submitted at a time (bounded memory on a long stream)."""
    pending: list[tuple[tuple, Any]] = []
    for job in jobs:
        pending.append((job, runner.submit(fn, *job)))
        while len(pending) >= runner.in_flight:
            done_job, future = pending.pop(0)
            on_result(done_job, future.result())
    for done_job, future in pending:
        on_result(done_job, future.result())


# ---- 3. spin families -----------------------------------------------------------------------
def candidate_pairs(doc_nos: Sequence[int], band_lists: Sequence[Sequence[int]], max_bucket: int = MAX_BUCKET,
                    min_hits: int = MIN_BAND_HITS) -> dict[tuple[int, int], int]:
    """{(a, b): shared bands} for document pairs (a < b) sharing at least `min_hits` band keys, over
    buckets of at most `max_bucket` documents (numpy: a sort of all keys, no database).

    >>> candidate_pairs([0, 1, 2], [[5, 6, 7], [5, 6, 9], [7]], min_hits=2)
    {(0, 1): 2}
    """
    sizes = [len(b) for b in band_lists]
    keys = np.fromiter((k for b in band_lists for k in b), dtype=np.int64, count=sum(sizes))
    docs = np.repeat(np.asarray(doc_nos, dtype=np.int64), sizes)
    return pairs_from_arrays(keys, docs, max_bucket, min_hits)


def pairs_from_arrays(keys: np.ndarray, docs: np.ndarray, max_bucket: int = MAX_BUCKET,
                      min_hits: int = MIN_BAND_HITS) -> dict[tuple[int, int], int]:
    """`candidate_pairs` over flat arrays: band key i belongs to document docs[i]."""
    if not len(keys):
        return {}
    order = np.lexsort((docs, keys))
    keys, docs = keys[order], docs[order]
    keep = np.r_[True, (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])]  # one key per document
    keys, docs = keys[keep], docs[keep]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    counts: Counter = Counter()
    for s, n in zip(starts[(sizes >= 2) & (sizes <= max_bucket)].tolist(),
                    sizes[(sizes >= 2) & (sizes <= max_bucket)].tolist()):
        counts.update(bucket_pairs(docs[s:s + n].tolist()))
    return {pair: n for pair, n in sorted(counts.items()) if n >= min_hits}


def band_arrays(part_files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(band keys, their documents) of a scan's work files, as flat int64 arrays (no Python lists:
    100,000 documents hold 9.5 million keys)."""
    import pyarrow.compute as pc

    keys, docs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for path in part_files:
        t = pq.read_table(path, columns=["doc_no", "bands"])
        lists = t.column("bands").combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
        keys.append(lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False))
        docs.append(np.repeat(t.column("doc_no").to_numpy(), lengths))
    return np.concatenate(keys), np.concatenate(docs)


def bucket_pairs(members: Sequence[int]) -> list[tuple[int, int]]:
    """All pairs (a < b) of the documents of one bucket.

    >>> bucket_pairs([3, 1, 2])
    [(1, 2), (1, 3), (2, 3)]
    """
    m = sorted(set(members))
    return [(m[i], m[j]) for i in range(len(m)) for j in range(i + 1, len(m))]


def _key_doc_pairs(part: list[tuple[int, list[int]]]) -> list[tuple[int, int]]:
    return [(k, doc_no) for doc_no, keys in part for k in keys]


def _bucket_pairs_of_group(group: tuple[int, list[tuple[int, int]]], max_bucket: int) -> list[tuple[int, int]]:
    members = sorted({doc_no for _, doc_no in group[1]})
    return bucket_pairs(members) if 2 <= len(members) <= max_bucket else []


def candidate_pairs_bag(parts: Sequence[list[tuple[int, list[int]]]], max_bucket: int = MAX_BUCKET,
                        min_hits: int = MIN_BAND_HITS, scheduler: Any = None) -> dict[tuple[int, int], int]:
    """The same as `candidate_pairs`, as a dask.bag join on the band keys: `parts` are
    [(doc_no, band keys)] per partition; `scheduler`: a distributed Client (None: dask's default).

    >>> candidate_pairs_bag([[(0, [5, 6, 7])], [(1, [5, 6, 9]), (2, [7])]], min_hits=2, scheduler="sync")
    {(0, 1): 2}
    """
    import dask.bag as db

    bag = db.from_sequence(list(parts), partition_size=1).map(_key_doc_pairs).flatten()
    pairs = (bag.groupby(lambda kv: kv[0], shuffle="tasks")
             .map(_bucket_pairs_of_group, max_bucket=max_bucket).flatten()
             .frequencies().filter(lambda kv: kv[1] >= min_hits))
    return {tuple(pair): n for pair, n in sorted(pairs.compute(scheduler=scheduler))}


def shared_type_share(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> float:
    """The share of the shorter word list's types found in the other (a cheap test before aligning).

    >>> shared_type_share(words_of("the plan was ready"), words_of("the scheme was ready"))
    0.75
    """
    return type_share(word_types(a), word_types(b))


def word_types(words: list[tuple[str, str]]) -> frozenset[str]:
    """The canonical forms of a `words_of` list, as a set."""
    return frozenset(n for _, n in words)


def type_share(a: frozenset[str], b: frozenset[str]) -> float:
    """`shared_type_share` of two `word_types` sets."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & big) / len(small) if small else 0.0


def number_agreement(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> float:
    """The share of the numbers of the text with fewer numbers that the other text holds too
    (counted with repeats; numbers of two or more characters: "No. 1" and "2 vs. 3" say nothing);
    1.0 when neither has any.

    >>> number_agreement(words_of("In 2010 about 40 troops left"), words_of("In 2010 some 40 soldiers departed"))
    1.0
    >>> number_agreement(words_of("Of the 43 homes, 36 had children"), words_of("Of the 49 homes, 29 had children"))
    0.0
    """
    na = Counter(n for s, n in a if s[:1].isdigit() and len(n) > 1)
    nb = Counter(n for s, n in b if s[:1].isdigit() and len(n) > 1)
    if not (na or nb):
        return 1.0
    small = min(sum(na.values()), sum(nb.values()))
    return sum((na & nb).values()) / small if small else 0.0


def family_match(judge: SubstitutionJudge, text_a: str, text_b: str, min_coverage: float = FAMILY_MIN_COVERAGE,
                 ) -> float | None:
    """The alignment score when one text is a spun copy of the other (or both of one source), else
    None: the shorter text aligned to the longer with `min_coverage` of its words identical or
    channel-explained (`trace.accepts`, with its stricter rule for short texts), and their numbers
    agreeing (`MIN_NUMBER_AGREEMENT`; the marks AI rewriters leave, "4, 000", repaired first)."""
    wa, wb = words_of(repair_rewriter_marks(text_a)), words_of(repair_rewriter_marks(text_b))
    if not wa or not wb or shared_type_share(wa, wb) < MIN_SHARED_TYPES:
        return None
    if number_agreement(wa, wb) < MIN_NUMBER_AGREEMENT:
        return None
    query, source = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    m = verify(judge, query, source, "")
    return round(m.score, 6) if accepts(m, len(query), min_coverage) else None


def verify_pairs(spec: ScanSpec, pairs: list[tuple[int, int, str, str]]) -> list[tuple[int, int, float]]:
    """(a, b, score) for the pairs (a, b, text_a, text_b) that `family_match` confirms."""
    judge = scan_tools(spec).judge
    out = []
    for a, b, text_a, text_b in pairs:
        score = family_match(judge, text_a, text_b, spec.family_min_coverage)
        if score is not None:
            out.append((a, b, score))
    return out


class UnionFind:
    """Disjoint sets over hashable nodes, with set sizes counted in `weight` units.

    >>> uf = UnionFind(); _ = uf.union(1, 2); uf.find(2) == uf.find(1)
    True
    """

    def __init__(self):
        self.parent: dict = {}
        self.size: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        self.size.setdefault(x, 1 if not isinstance(x, str) else 0)  # index sources weigh nothing
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a, b, max_size: int | None = None) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if max_size is not None and self.size[ra] + self.size[rb] > max_size:
            return False
        if self.size[ra] < self.size[rb] or (self.size[ra] == self.size[rb] and str(ra) > str(rb)):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


@dataclass
class Family:
    """A spin family: its documents (doc_no), and its likely source."""

    family_id: str
    members: list[int]
    source: str                 # the indexed document's id, or the least-spun member's id
    source_kind: str            # "index" or "member"
    indexed: list[str] = field(default_factory=list)   # the indexed sources linked to the family


def group_families(edges: Iterable[tuple[int, int, float]], index_links: dict[int, tuple[str, float]],
                   spin: dict[int, float | None], ids: dict[int, str | None],
                   max_family: int = MAX_FAMILY) -> dict[int, Family]:
    """{doc_no: Family} from verified pairs (a, b, score) and index links {doc_no: (indexed id, score)}:
    connected components merged strongest edge first, never beyond `max_family` documents (a hub
    document that aligns with several stories joins only its strongest family). A component is a
    family when it holds two documents, or one document and an indexed source. The family's id is
    "F" + its first document's doc_no; its source the indexed document most members matched, or the
    least-spun member (lowest spin probability, then first in the input).

    >>> fams = group_families([(0, 1, 0.9)], {}, {0: 0.1, 1: 0.95}, {0: "a", 1: "b"})
    >>> fams[1].family_id, fams[1].members, fams[1].source, fams[1].source_kind
    ('F0', [0, 1], 'a', 'member')
    """
    uf = UnionFind()
    links = [(a, b, s) for a, b, s in edges]
    links += [(doc_no, f"index:{src}", s) for doc_no, (src, s) in index_links.items()]
    links.sort(key=lambda e: (-e[2], str(e[0]), str(e[1])))
    for a, b, _ in links:
        uf.union(a, b, max_family)
    groups: dict[Any, list] = defaultdict(list)
    for node in list(uf.parent):
        groups[uf.find(node)].append(node)
    families: dict[int, Family] = {}
    for nodes in groups.values():
        members = sorted(n for n in nodes if not isinstance(n, str))
        indexed = sorted(n.removeprefix("index:") for n in nodes if isinstance(n, str))
        if not members or (len(members) < 2 and not indexed):
            continue
        if indexed:
            votes = Counter(index_links[m][0] for m in members if m in index_links)
            source = max(indexed, key=lambda i: (votes.get(i, 0), -indexed.index(i)))
            kind = "index"
        else:
            least = min(members, key=lambda m: (1.0 if spin.get(m) is None else spin[m], m))
            source, kind = (ids.get(least) or f"#{least}"), "member"
        fam = Family(f"F{members[0]}", members, source, kind, indexed)
        for m in members:
            families[m] = fam
    return families


# ---- 4. restoring a family's members from each other ------------------------------------------


@dataclass
class FamilyCopy:
    """One member of a family as the restoration needs it: its checked text and the decoder's
    confident changes (what restoring it alone applies)."""

    doc_no: int
    doc_id: str | None
    text: str
    changes: list[Span]
    spin_probability: float = 1.0


def lm_choice(lm: LanguageModel, text: str, start: int, end: int, wordings: Iterable[str],
              margin: float = LM_MARGIN) -> str | None:
    """Of the `wordings` (lowercase) for text[start:end], the one the language model prefers in
    its context (`LM_CONTEXT` words a side) by at least `margin` (log10) over every other; None
    when none stands out.

    >>> lm_choice(lm, "The minister stated the plan.", 13, 19, ["stated", "said"])   # doctest: +SKIP
    'said'
    """
    before = lm_tokens(text[max(0, start - 20 * LM_CONTEXT):start])[-LM_CONTEXT:]
    after = lm_tokens(text[end:end + 20 * LM_CONTEXT])[:LM_CONTEXT]
    scores = sorted(((lm.sentence_score(" ".join(before + _wording_tokens(w) + after), bos=False, eos=False), w)
                     for w in set(wordings)), reverse=True)
    if len(scores) > 1 and scores[0][0] - scores[1][0] >= margin:
        return scores[0][1]
    return None


@functools.lru_cache(maxsize=20_000)  # a family's wordings come back at every place they compete
def _wording_tokens(wording: str) -> list[str]:
    return lm_tokens(wording)


@dataclass
class SiblingView:
    """What one other copy (or the indexed source) shows of a copy: the copy's character ranges
    where it has the same words (`same`, in text order), and (start, end, its wording) where it has
    another (`wordings`); `weight`: its votes."""

    same: list[tuple[int, int]]
    wordings: list[tuple[int, int, str]]
    weight: int = 1


def sibling_views(judge: SubstitutionJudge, a: FamilyCopy, b: FamilyCopy) -> tuple[SiblingView, SiblingView]:
    """(what `b` shows of `a`, what `a` shows of `b`) from one channel-aware alignment of the two
    (trace's `verify`). A wording is kept for each substitution of up to `MAX_PHRASE` words a side
    in the parts the alignment explains; unlike `trace.source_replacements` (one source, trusted
    alone) also those the channel does not explain in rewritten parts: a copy only votes, and a
    wording wins only where copies agree on it, which unrelated words paired by chance do not."""
    m = verify(judge, words_at(a.text), words_at(b.text), b.doc_id or f"#{b.doc_no}")
    of_a, of_b = SiblingView([], []), SiblingView([], [])
    for (op, q, s), (q1, q2, s1, s2) in zip(m.alignment, m.row_spans):
        if q1 < 0 or s1 < 0:
            continue
        if op == "same":
            of_a.same.append((q1, q2))
            of_b.same.append((s1, s2))
        elif (op in ("sub_channel", "sub") and len(q.split()) <= MAX_PHRASE and len(s.split()) <= MAX_PHRASE
              and any(g.start <= q1 and q2 <= g.end for g in m.segments)):
            of_a.wordings.append((q1, q2, b.text[s1:s2]))
            of_b.wordings.append((s1, s2, a.text[q1:q2]))
    of_b.same.sort()
    return of_a, of_b


def sibling_votes(copy: FamilyCopy, views: Sequence[SiblingView], lm: LanguageModel | None = None) -> SourceRestoration:
    """What the other copies of a story say about `copy`'s wording, as a `SourceRestoration`
    ("family"): `replacements` (start, end, wording) where more copies, with the decoder, vote for
    another wording than for the copy's own, and `segments` the places the family settles (those,
    and the decoder's changes the family overrules).

    Each other copy (`views`: from `sibling_views`) votes with its weight: where it shows the same
    word, for the copy's wording; where it shows another, for that one. The copy's wording has one
    vote of its own, lost where the decoder changes it; the decoder's suggestion has one, and so has
    the wording the language model (`lm`, optional) clearly prefers in context (`lm_choice`). A
    spinner replaces a word in one copy and keeps it in the others, so the original wins; where the
    copies each say something else (a tie) the copy's wording, or the decoder's change, stays.

    >>> copies = [FamilyCopy(i, f"c{i}", f"The minister {w} the plan was ready.", [])
    ...           for i, w in enumerate(["said", "said", "stated"])]
    >>> views = [sibling_views(judge, copies[2], c)[0] for c in copies[:2]]   # doctest: +SKIP
    >>> sibling_votes(copies[2], views).replacements                          # doctest: +SKIP
    [(13, 19, 'said')]
    """
    alternatives: dict[tuple[int, int], Counter] = defaultdict(Counter)
    wordings: dict[tuple[int, int, str], str] = {}
    for view in views:
        for start, end, wording in view.wordings:
            key = wording.lower()
            alternatives[(start, end)][key] += view.weight
            wordings.setdefault((start, end, key), wording)
    starts = [[a for a, _ in view.same] for view in views]

    def kept_by(start: int, end: int) -> int:  # the votes of the copies showing the copy's own wording there
        total = 0
        for view, firsts in zip(views, starts):
            k = bisect.bisect_right(firsts, start) - 1   # the ranges are in text order, apart
            if k >= 0 and end <= view.same[k][1]:
                total += view.weight
        return total

    decoder = {(c.start, c.end): (c.suggestion or "").lower() for c in copy.changes}
    chosen = []
    for (start, end), votes in alternatives.items():
        own = 1 + kept_by(start, end)
        if any(start < c.end and c.start < end for c in copy.changes):
            own -= 1   # the decoder reads the copy's wording here as substituted
        suggestion = decoder.get((start, end))
        if suggestion in votes:
            votes = votes + Counter({suggestion: 1})
        if lm is not None and 0 <= max(votes.values()) - own <= 1:   # else one more vote changes nothing
            own_wording = copy.text[start:end].lower()
            preferred = lm_choice(lm, copy.text, start, end, [own_wording, *votes])
            if preferred == own_wording:
                own += 1
            elif preferred is not None:
                votes = votes + Counter({preferred: 1})
        best, n = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        if n > own:
            chosen.append((n - own, start, end, wordings[(start, end, best)]))
    replacements: list[tuple[int, int, str]] = []
    for _, start, end, wording in sorted(chosen, key=lambda c: (-c[0], c[1], c[2])):
        if not any(start < b and a < end for a, b, _ in replacements):  # overlapping phrases: the surest first
            replacements.append((start, end, match_case(copy.text[start:end], wording)))
    # a decoder change that more siblings contradict (they show the copy's wording, and none the
    # decoder's) than support, with the decoder's own vote, is overruled
    overruled = [(c.start, c.end) for c in copy.changes
                 if kept_by(c.start, c.end) > 1 + alternatives.get((c.start, c.end), Counter())[decoder[(c.start, c.end)]]]
    segments = sorted({(a, b) for a, b, _ in replacements} | set(overruled))
    return SourceRestoration("family", segments, sorted(replacements))


# A family's least spun member is taken for its unspun source when it reads as genuine (below the
# "possibly spun" threshold) while another member reads as spun.
SOURCE_MAX_P = 0.2
COPY_MIN_P = 0.5


def looks_like_the_source(copies: Sequence[FamilyCopy]) -> bool:
    """Whether the first of `copies` (least spun first) looks like the text the others were spun from.

    >>> looks_like_the_source([FamilyCopy(0, "a", "", [], 0.04), FamilyCopy(1, "b", "", [], 0.93)])
    True
    >>> looks_like_the_source([FamilyCopy(0, "a", "", [], 0.04), FamilyCopy(1, "b", "", [], 0.12)])
    False
    """
    return (len(copies) > 1 and copies[0].spin_probability < SOURCE_MAX_P
            and max(c.spin_probability for c in copies[1:]) >= COPY_MIN_P)


def restore_family_member(judge: SubstitutionJudge, copy: FamilyCopy, views: Sequence[SiblingView],
                          source: tuple[str, str] | None, min_confidence: float,
                          lm: LanguageModel | None = None) -> tuple[str, int]:
    """(the restored text of `copy`, the number of changes taken from the family).

    By `sibling_votes` of the other copies (`views`); with the family's indexed source (`source`:
    its id and text) the source votes too, with more weight than all the copies, the decoder and
    the language model together: where it aligns with the copy its wording decides (the copies
    matter where it does not align). Where the family says nothing the decoder's changes stay
    (`with_source_spans`).
    """
    if source is not None:
        of_copy, _ = sibling_views(judge, copy, FamilyCopy(-1, source[0], source[1], []))
        of_copy.weight = len(views) + 3
        views = [of_copy, *views]
    restoration = sibling_votes(copy, views, lm)
    spans = with_source_spans(copy.text, copy.changes, [restoration])
    return apply_spans(copy.text, spans, min_confidence), len(restoration.replacements)


def restore_families(spec: ScanSpec, jobs: list[tuple[list[FamilyCopy], tuple[str, str | None] | None]],
                     ) -> dict[int, tuple[str, int]]:
    """{doc_no: (restored text, changes from the family)} for the members of each family of `jobs`
    ((its copies, least spun first; (indexed source id, its text or None to read it from the index)
    or None)): the unit of work of the family restoration. Each member is compared with the first
    `spec.restore_siblings` others; each pair is aligned once, for both of its copies."""
    tools = scan_tools(spec)
    lm = tools.engine.lm if spec.family_lm_vote else None
    out: dict[int, tuple[str, int]] = {}
    for copies, source in jobs:
        if source is not None and source[1] is None:
            text = source_text(tools.index, source[0]) if tools.index is not None else ""
            source = (source[0], text) if text else None
        pairs: dict[tuple[int, int], tuple[SiblingView, SiblingView]] = {}

        def view(i: int, j: int) -> SiblingView:  # what copy j shows of copy i
            key = (min(i, j), max(i, j))
            if key not in pairs:
                pairs[key] = sibling_views(tools.judge, copies[key[0]], copies[key[1]])
            return pairs[key][0 if i < j else 1]

        for i, copy in enumerate(copies):
            if source is None and i == 0 and looks_like_the_source(copies):
                # Its siblings vote on the others, never on it: they had changed 1% of the words
                # of the unspun sources among the members (bench/scan.md).
                out[copy.doc_no] = restore_family_member(tools.judge, copy, [], None, spec.min_confidence, lm)
                continue
            others = [j for j in range(len(copies)) if j != i][:spec.restore_siblings]
            out[copy.doc_no] = restore_family_member(tools.judge, copy, [view(i, j) for j in others], source,
                                                     spec.min_confidence, lm)
    return out


# ---- the whole scan -----------------------------------------------------------------------
@dataclass
class ScanSummary:
    """Counts of a finished scan (what `OUT/summary.json` holds)."""

    documents: int = 0
    errors: int = 0
    judged: int = 0
    spun: int = 0
    spun_share: float = 0.0
    verdicts: dict = field(default_factory=dict)
    families: int = 0
    documents_in_families: int = 0
    family_changes: int = 0      # changes in family members' `restored` taken from the family
    largest_families: list = field(default_factory=list)
    top_sites: list = field(default_factory=list)
    partitions: int = 0
    partitions_skipped: int = 0
    candidate_pairs: int = 0
    aligned_pairs: int = 0
    verified_pairs: int = 0
    seconds: float = 0.0
    words: int = 0
    peak_memory_mb: dict = field(default_factory=dict)   # {"main": MB, "worker": MB of the largest worker}

    def to_text(self) -> str:
        """A short report for stderr."""
        lines = [f"scanned {self.documents:,} documents ({self.errors:,} errors, {self.judged:,} judged): "
                 f"{self.spun:,} spun or likely spun ({self.spun_share:.1%}); "
                 f"{self.families:,} spin families holding {self.documents_in_families:,} documents"
                 + (f", {self.family_changes:,} changes restored from their families" if self.family_changes else "")]
        if self.partitions_skipped:
            lines.append(f"  resumed: {self.partitions_skipped} of {self.partitions} partitions were already done")
        for f in self.largest_families[:5]:
            lines.append(f"  family {f['family_id']}: {f['size']} documents, source {f['source']} ({f['source_kind']})")
        for s in self.top_sites[:5]:
            lines.append(f"  site {s['site']}: {s['spun']}/{s['documents']} spun ({s['spun_share']:.0%})")
        return "\n".join(lines)


def _manifest(paths: Sequence[str], options: dict) -> dict:
    inputs = []
    for p in paths:
        st = os.stat(p) if p != "-" and os.path.exists(p) else None
        inputs.append({"path": os.path.abspath(p) if p != "-" else "-",
                       "size": st.st_size if st else None, "mtime": st.st_mtime if st else None})
    return {"inputs": inputs, "options": options}


def prepare_output(out: str | os.PathLike, manifest: dict) -> Path:
    """The output folder, created if needed; InputError when it holds a scan of other inputs or
    options (its finished partitions would not belong to this scan) or something else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; --out names a folder (a Parquet dataset)")
    work = out / WORK_DIR
    if out.exists() and any(out.iterdir()):
        try:
            old = json.loads((work / MANIFEST).read_text())
        except (OSError, ValueError):
            raise InputError(f"{out}: folder exists and is not an unspin scan; give a new or empty folder") from None
        if old != manifest:
            raise InputError(f"{out}: holds a scan of other inputs or options; give another --out, or remove it "
                             f"to start over")
    work.mkdir(parents=True, exist_ok=True)
    if not os.access(work, os.W_OK):
        raise InputError(f"{out}: folder is not writable")
    with atomic_output(str(work / MANIFEST)) as f:
        f.write(json.dumps(manifest, indent=1))
    return out


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file that appears only once complete (a killed run leaves no half file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def part_name(part_no: int) -> str:
    """The file name of a partition.

    >>> part_name(7)
    'part-00007.parquet'
    """
    return f"part-{part_no:05d}.parquet"


def scan(paths: Sequence[str], out: str | os.PathLike, spec: ScanSpec = ScanSpec(), *, workers: int | None = None,
         scheduler: Any = None, id_column: str = "id", text_column: str = "text",
         max_bytes: int = MAX_DOCUMENT_BYTES, partition_size: int = PARTITION_SIZE, families: bool = True,
         progress: Callable[[int], None] | None = None, on_partition: Callable[[int], None] | None = None,
         log: Callable[[str], None] | None = None) -> ScanSummary:
    """Scan inputs into the Parquet dataset folder `out` and return the summary.

    `workers`: local processes (None: all cores); `scheduler`: a Dask scheduler address
    ("tcp://host:8786") or a distributed Client, instead of local processes. `progress(n)` is
    called with the number of documents finished after each partition; `on_partition(part_no)`
    after each partition is written. Partitions already in `out` from an interrupted run of the
    same inputs and options are skipped.

    >>> summary = scan(["rows.jsonl"], "results/")                   # doctest: +SKIP
    >>> summary.documents, summary.families                            # doctest: +SKIP
    (2000, 41)
    """
    t0 = time.time()
    log = log or (lambda msg: None)
    check_inputs(paths, id_column, text_column)
    options = {"id_column": id_column, "text_column": text_column, "max_bytes": max_bytes,
               "partition_size": partition_size, "spec": _spec_dict(spec)}
    if scheduler is None:
        scan_tools(spec)  # load here: model errors surface at once, and forked workers inherit the tools
    runner = DaskRunner(scheduler) if scheduler is not None else LocalRunner(workers or os.cpu_count() or 1)
    summary = ScanSummary()
    done = 0
    finished = False
    try:
        out = prepare_output(out, _manifest(paths, options))
        work = out / WORK_DIR

        def jobs() -> Iterator[tuple]:
            nonlocal done
            records = iter_records(paths, id_column=id_column, text_column=text_column, max_bytes=max_bytes)
            for part_no, part in iter_partitions(records, partition_size):
                summary.partitions += 1
                if (work / part_name(part_no)).exists():
                    summary.partitions_skipped += 1
                    done += len(part)
                    if progress:
                        progress(done)
                    continue
                yield spec, part_no, part

        def write(job: tuple, table: pa.Table) -> None:
            nonlocal done
            write_table_atomic(table, work / part_name(job[1]))
            done += table.num_rows
            if progress:
                progress(done)
            if on_partition:
                on_partition(job[1])

        run_bounded(runner, scan_partition, jobs(), write)
        part_files = [work / part_name(n) for n in range(summary.partitions)]
        fams: dict[int, Family] = {}
        restorations: dict[int, tuple[str, int]] = {}
        if families:
            fams = find_families(part_files, spec, runner, summary, log)
            restorations = restore_all(part_files, fams, spec, runner)
        write_output(out, part_files, fams, summary, restorations)
        finished = True
    finally:
        if finished:
            worker_mb = runner.peak_worker_mb() if isinstance(runner, DaskRunner) else None
            runner.close(finished=True)
            worker_mb = worker_mb or runner.peak_worker_mb()
            summary.peak_memory_mb = {"main": _maxrss_mb(resource.RUSAGE_SELF), "worker": worker_mb}
        else:
            runner.close()
    summary.seconds = round(time.time() - t0, 2)
    with atomic_output(str(out / "summary.json")) as f:
        f.write(json.dumps(asdict(summary), indent=1) + "\n")
    return summary


def _spec_dict(spec: ScanSpec) -> dict:
    d = asdict(spec)
    d["thresholds"] = asdict(spec.thresholds)
    return d


def find_families(part_files: Sequence[Path], spec: ScanSpec, runner, summary: ScanSummary,
                  log: Callable[[str], None]) -> dict[int, Family]:
    """The spin families of a scanned corpus (from its work files): candidate pairs by shared bands
    (a Dask join on a cluster, numpy here), verified in parallel, grouped."""
    spin: dict[int, float | None] = {}
    ids: dict[int, str | None] = {}
    index_links: dict[int, tuple[str, float]] = {}
    for path in part_files:
        t = pq.read_table(path, columns=["doc_no", "id", "spin_probability", "indexed_source",
                                         "indexed_score"]).to_pydict()
        for i, doc_no in enumerate(t["doc_no"]):
            spin[doc_no], ids[doc_no] = t["spin_probability"][i], t["id"][i]
            if t["indexed_source"][i] is not None:
                index_links[doc_no] = (t["indexed_source"][i], t["indexed_score"][i])
    if isinstance(runner, DaskRunner):
        parts = []
        for path in part_files:
            t = pq.read_table(path, columns=["doc_no", "bands"]).to_pydict()
            parts.append([(d, b) for d, b in zip(t["doc_no"], t["bands"]) if b])
        pairs = candidate_pairs_bag(parts, spec.max_bucket, spec.min_band_hits, scheduler=runner.client)
        del parts
    else:
        pairs = pairs_from_arrays(*band_arrays(part_files), spec.max_bucket, spec.min_band_hits)
    summary.candidate_pairs = len(pairs)
    log(f"{len(pairs):,} candidate pairs")
    texts = _texts_of(part_files, {d for pair in pairs for d in pair})
    edges: list[tuple[int, int, float]] = []
    # Most shared bands first, in rounds of a fixed size (so the result does not depend on the number
    # of workers): a pair whose documents are already linked through verified pairs is not aligned.
    pair_list = sorted(pairs, key=lambda p: (-pairs[p], p))
    linked = UnionFind()
    for start in range(0, len(pair_list), PAIRS_PER_ROUND):
        todo = [(a, b) for a, b in pair_list[start:start + PAIRS_PER_ROUND] if linked.find(a) != linked.find(b)]
        chunks = ((spec, [(a, b, texts[a], texts[b]) for a, b in todo[i:i + PAIRS_PER_TASK]])
                  for i in range(0, len(todo), PAIRS_PER_TASK))
        found: list[tuple[int, int, float]] = []
        run_bounded(runner, verify_pairs, chunks, lambda job, result: found.extend(result))
        for a, b, _ in found:
            linked.union(a, b)
        edges.extend(found)
        summary.aligned_pairs += len(todo)
    summary.verified_pairs = len(edges)
    return group_families(edges, index_links, spin, ids, spec.max_family)


def restore_all(part_files: Sequence[Path], families: dict[int, Family], spec: ScanSpec, runner,
                ) -> dict[int, tuple[str, int]]:
    """{doc_no: (restored text, changes from the family)} for every member of a family, restored
    with the other copies or the indexed source (`restore_families`, in parallel)."""
    if not families:
        return {}
    copies: dict[int, FamilyCopy] = {}
    spin: dict[int, float] = {}
    for path in part_files:
        t = pq.read_table(path, columns=["doc_no", "id", "text", "changes", "spin_probability"]).to_pydict()
        for i, doc_no in enumerate(t["doc_no"]):
            if doc_no in families and t["text"][i] is not None:
                changes = [Span(c["start"], c["end"], c["text"], c["suggestion"], c["confidence"],
                                {"p_spun": c["p_spun"]}) for c in t["changes"][i] or []]
                p = t["spin_probability"][i]
                spin[doc_no] = 1.0 if p is None else p
                copies[doc_no] = FamilyCopy(doc_no, t["id"][i], t["text"][i], changes, spin[doc_no])
    unique = sorted({id(f): f for f in families.values()}.values(), key=lambda f: f.members[0])
    jobs = []
    for fam in unique:
        members = sorted((m for m in fam.members if m in copies), key=lambda m: (spin[m], m))
        if members:
            source = (fam.source, None) if fam.source_kind == "index" else None
            jobs.append(([copies[m] for m in members], source))
    out: dict[int, tuple[str, int]] = {}
    chunks = ((spec, jobs[i:i + FAMILIES_PER_TASK]) for i in range(0, len(jobs), FAMILIES_PER_TASK))
    run_bounded(runner, restore_families, chunks, lambda job, result: out.update(result))
    return out


def _texts_of(part_files: Sequence[Path], wanted: set[int]) -> dict[int, str]:
    texts: dict[int, str] = {}
    if not wanted:
        return texts
    for path in part_files:
        t = pq.read_table(path, columns=["doc_no", "text"]).to_pydict()
        for doc_no, text in zip(t["doc_no"], t["text"]):
            if doc_no in wanted:
                texts[doc_no] = text or ""
    return texts


def write_output(out: Path, part_files: Sequence[Path], families: dict[int, Family], summary: ScanSummary,
                 restorations: dict[int, tuple[str, int]] | None = None) -> None:
    """The output partitions (work columns without text, bands and changes, with the family
    columns, and `restored` from the family where it has one) and the summary's counts."""
    restorations = restorations or {}
    verdicts: Counter = Counter()
    sites: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    doc_columns = [name for name, _ in DOC_FIELDS]
    for path in part_files:
        t = pq.read_table(path, columns=doc_columns).to_pydict()
        n = len(t["doc_no"])
        fam_cols = {"family_id": [None] * n, "family_size": [None] * n, "family_source": [None] * n,
                    "family_source_kind": [None] * n, "family_changes": [None] * n}
        for i, doc_no in enumerate(t["doc_no"]):
            fam = families.get(doc_no)
            if fam is not None:
                fam_cols["family_id"][i] = fam.family_id
                fam_cols["family_size"][i] = len(fam.members)
                fam_cols["family_source"][i] = fam.source
                fam_cols["family_source_kind"][i] = fam.source_kind
                if doc_no in restorations:
                    t["restored"][i], fam_cols["family_changes"][i] = restorations[doc_no]
                    summary.family_changes += fam_cols["family_changes"][i]
            summary.documents += 1
            if t["error"][i] is not None:
                summary.errors += 1
                continue
            verdicts[t["verdict"][i]] += 1
            summary.words += t["n_words"][i] or 0
            if t["spin_probability"][i] is not None:
                summary.judged += 1
                spun = t["verdict"][i] in SPUN_VERDICTS
                summary.spun += spun
                if t["site"][i]:
                    sites[t["site"][i]][0] += 1
                    sites[t["site"][i]][1] += spun
        table = pa.Table.from_pydict({**t, **fam_cols}, schema=OUTPUT_SCHEMA)
        write_table_atomic(table, out / path.name)
    summary.verdicts = dict(sorted(verdicts.items()))
    summary.spun_share = round(summary.spun / summary.judged, 4) if summary.judged else 0.0
    unique = {id(f): f for f in families.values()}.values()
    summary.families = len(unique)
    summary.documents_in_families = len(families)
    biggest = sorted(unique, key=lambda f: (-len(f.members), f.members[0]))[:20]
    summary.largest_families = [{"family_id": f.family_id, "size": len(f.members), "source": f.source,
                                 "source_kind": f.source_kind, "members": f.members[:20]} for f in biggest]
    # sites with a few judged documents first (one spun page of a site says little about it)
    ranked = sorted(sites.items(), key=lambda kv: (kv[1][0] < MIN_SITE_DOCUMENTS, -kv[1][1] / kv[1][0], -kv[1][0], kv[0]))
    summary.top_sites = [{"site": s, "documents": n, "spun": k, "spun_share": round(k / n, 4)}
                         for s, (n, k) in ranked[:20]]


def read_output(out: str | os.PathLike) -> pa.Table:
    """All rows of a scan's output folder, in input order.

    >>> read_output("results/").num_rows                             # doctest: +SKIP
    2000
    """
    files = sorted(Path(out).glob("part-*.parquet"))
    if not files:
        raise InputError(f"{out}: no scan output here (no part-*.parquet files); run `unspin scan INPUT --out {out}`")
    return pa.concat_tables([pq.read_table(f, schema=OUTPUT_SCHEMA) for f in files])


# ---- the HTML report ------------------------------------------------------------------------
REPORT_FAMILIES = 10     # families shown side by side
REPORT_MEMBERS = 4       # members shown per family
REPORT_EXCERPT = 600     # characters of each member's text


def write_report(out: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Render the HTML summary of the scan in `out` to `path` (default OUT/report.html)."""
    out = Path(out)
    table = read_output(out)
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"{out}: no summary.json; the scan there did not finish (run it again)") from None
    rows = table.select(["doc_no", "id", "url", "site", "spin_probability", "verdict", "family_id",
                         "family_source", "family_source_kind", "n_words", "restored", "family_changes"]).to_pylist()
    families: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["family_id"] is not None:
            families[r["family_id"]].append(r)
    top = sorted(families.items(), key=lambda kv: (-len(kv[1]), kv[1][0]["doc_no"]))[:REPORT_FAMILIES]
    wanted = {r["doc_no"] for _, members in top for r in members[:REPORT_MEMBERS]}
    work_files = sorted((out / WORK_DIR).glob("part-*.parquet"))
    texts = _texts_of(work_files, wanted)
    target = Path(path) if path else out / "report.html"
    check_new_file_path(target, "the report")
    with atomic_output(str(target)) as f:
        f.write(render_report(summary, rows, top, texts))
    return target


def restored_excerpt_html(text: str, restored: str, limit: int) -> str:
    """The first `limit` characters of `restored` as HTML, each word that differs from `text`
    marked (<ins>, the copy's wording in its title).

    >>> restored_excerpt_html("The minister stated it.", "The minister said it.", 100)
    'The minister <ins title="was: stated">said</ins> it.'
    """
    old, new = re.split(r"(\s+)", text), re.split(r"(\s+)", restored)
    out, shown = [], 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if shown >= limit:
            break
        part = "".join(new[j1:j2])
        if op == "equal":
            part = part[:limit - shown]
            out.append(html.escape(part))
        elif part:
            out.append(f'<ins title="was: {html.escape("".join(old[i1:i2]))}">{html.escape(part)}</ins>')
        shown += len(part)
    return "".join(out) + ("…" if shown < len(restored) else "")


def _histogram(probs: list[float], bins: int = 20) -> list[int]:
    counts = [0] * bins
    for p in probs:
        counts[min(int(p * bins), bins - 1)] += 1
    return counts


def render_report(summary: dict, rows: list[dict], families: list[tuple[str, list[dict]]],
                  texts: dict[int, str]) -> str:
    """A self-contained HTML page: counts, the histogram of spin probabilities, the largest
    families with their members side by side, and the sites by spun share."""
    esc = html.escape
    probs = [r["spin_probability"] for r in rows if r["spin_probability"] is not None]
    counts = _histogram(probs)
    peak = max(counts) or 1
    bars = "".join(
        f'<div class="bar" title="{i / len(counts):.2f}-{(i + 1) / len(counts):.2f}: {c:,} documents">'
        f'<span style="height:{100 * c / peak:.1f}%"></span></div>' for i, c in enumerate(counts))
    fam_html = []
    for fam_id, members in families:
        src = members[0]
        # the source by its URL when it is a member with one (WARC record ids say little to a reader)
        shown = next((m["url"] for m in members if m["id"] == src["family_source"] and m["url"]),
                     src["family_source"])
        cards = []
        for r in members[:REPORT_MEMBERS]:
            p = "n/a" if r["spin_probability"] is None else f"{r['spin_probability']:.2f}"
            label = esc(str(r["id"])) if r["url"] is None else f'<a href="{esc(r["url"])}">{esc(r["url"])}</a>'
            text = texts.get(r["doc_no"], "")
            excerpt = text[:REPORT_EXCERPT] + ("…" if len(text) > REPORT_EXCERPT else "")
            restored = ""
            if r["family_changes"] and r["restored"]:
                restored = (f'<details><summary>restored: {r["family_changes"]:,} '
                            f'change{"s" * (r["family_changes"] != 1)} from the family</summary>'
                            f'<p>{restored_excerpt_html(text, r["restored"], REPORT_EXCERPT)}</p></details>')
            cards.append(f'<div class="member"><div class="head">{label}<span class="p">P(spun) {p} · '
                         f'{esc(r["verdict"] or "")}</span></div><p>{esc(excerpt)}</p>{restored}</div>')
        more = f'<p class="note">and {len(members) - REPORT_MEMBERS} more</p>' if len(members) > REPORT_MEMBERS else ""
        fam_html.append(f'<section class="family"><h3>{esc(fam_id)} · {len(members)} documents · likely source '
                        f'{esc(str(shown))} ({esc(str(src["family_source_kind"]))})</h3>'
                        f'<div class="members">{"".join(cards)}</div>{more}</section>')
    site_rows = "".join(
        f'<tr><td>{esc(s["site"])}</td><td>{s["documents"]:,}</td><td>{s["spun"]:,}</td>'
        f'<td><span class="share" style="width:{100 * s["spun_share"]:.0f}%"></span>{s["spun_share"]:.0%}</td></tr>'
        for s in summary.get("top_sites", []))
    verdicts = "".join(f"<li>{esc(k)}: {v:,}</li>" for k, v in summary.get("verdicts", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unspin scan report</title>
<style>
body{{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#222}}
h1{{font-size:1.4em}} h2{{font-size:1.15em;margin-top:1.6em}} h3{{font-size:1em;margin:.4em 0;overflow-wrap:anywhere}}
.tablewrap{{overflow-x:auto}} td:first-child{{overflow-wrap:anywhere}}
.stats{{display:flex;flex-wrap:wrap;gap:12px}} .stat{{background:#f3f4f6;border-radius:6px;padding:8px 12px}}
.stat b{{display:block;font-size:1.3em}}
.hist{{display:flex;align-items:flex-end;height:140px;gap:2px;border-bottom:1px solid #999}}
.bar{{flex:1;height:100%;display:flex;align-items:flex-end}} .bar span{{display:block;width:100%;background:#c2410c}}
.axis{{display:flex;justify-content:space-between;font-size:.8em;color:#666}}
.family{{border-top:1px solid #ddd;padding:8px 0}}
.members{{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:10px}}
.member{{background:#fafafa;border:1px solid #e5e7eb;border-radius:6px;padding:8px;font-size:.9em;overflow-wrap:anywhere}}
.member .head{{font-weight:600;display:flex;justify-content:space-between;gap:6px;flex-wrap:wrap}}
.member .p{{font-weight:400;color:#666}} .note{{color:#666;font-size:.9em}}
.member summary{{cursor:pointer;color:#1d4ed8}} ins{{background:#dcfce7;text-decoration:none;border-bottom:1px solid #16a34a}}
table{{border-collapse:collapse;width:100%}} td,th{{text-align:left;padding:4px 6px;border-bottom:1px solid #eee}}
.share{{display:inline-block;height:.7em;background:#c2410c;margin-right:6px;max-width:5em}}
</style></head><body>
<h1>unspin scan report</h1>
<div class="stats">
<div class="stat"><b>{summary.get("documents", 0):,}</b>documents</div>
<div class="stat"><b>{summary.get("spun_share", 0):.1%}</b>spun or likely spun</div>
<div class="stat"><b>{summary.get("families", 0):,}</b>spin families</div>
<div class="stat"><b>{summary.get("documents_in_families", 0):,}</b>documents in families</div>
<div class="stat"><b>{summary.get("errors", 0):,}</b>errors</div>
</div>
<ul>{verdicts}</ul>
<h2>Spin probability of the judged documents ({len(probs):,})</h2>
<div class="hist">{bars}</div><div class="axis"><span>0</span><span>0.5</span><span>1</span></div>
<h2>Largest spin families</h2>
{"".join(fam_html) or '<p class="note">No spin families found.</p>'}
<h2 id="sites">Sites by spun share</h2>
{f'<div class="tablewrap"><table><tr><th>site</th><th>documents</th><th>spun</th><th>share</th></tr>{site_rows}</table></div>' if site_rows
 else '<p class="note">No URLs in the input (sites come from WARC records or a url field).</p>'}
</body></html>
"""
