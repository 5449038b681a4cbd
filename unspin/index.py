"""A persistent, incremental index of reference documents for `trace` (one SQLite file).

Each document is stored with its text, its metadata (JSON) and the MinHash band keys of
`unspin.fingerprint` (over what spinners keep, and over synonym classes of the channel).

Candidates come from LSH banding stored in the table band(band_no, hash, doc) with an
index, so a query is a few dozen indexed lookups. Documents are written in batches of
500 per transaction: a kill mid-add loses at most the current batch, and an id is a
PRIMARY KEY whose bands are replaced in the same transaction, so nothing is duplicated.

    unspin index add --index refs.sqlite docs.jsonl rows.csv.gz folder/ -
    unspin index stats --index refs.sqlite
    unspin index remove --index refs.sqlite ID...

>>> with Index("refs.sqlite") as index:                       # doctest: +SKIP
...     index.add([{"id": "a1", "text": "The minister said the plan would cost more."}])
...     matches = index.trace("The minister mentioned the scheme would price extra.")
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .fingerprint import KINDS, NUM_PERM, Fingerprinter
from .inputs import (MAX_DOCUMENT_BYTES, BadRow, InputError, check_input, iter_input_docs, spool_stdin,
                     validate_input)
from .lexicon import Channel
from .trace import Match, SubstitutionJudge, trace

BATCH = 500
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    meta TEXT NOT NULL,
    n_words INTEGER NOT NULL,
    bands BLOB NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS band (band_no INTEGER NOT NULL, hash INTEGER NOT NULL, doc INTEGER NOT NULL,
                                 PRIMARY KEY (band_no, hash, doc)) WITHOUT ROWID;
"""


# ---- the index --------------------------------------------------------------------------
def check_index_path(path: str | os.PathLike, create: bool = True) -> None:
    """Raise InputError, before any work, for a path where no index can be opened or created:
    a folder, a missing index (create=False), or a missing or read-only folder."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path}: is a folder; give a file path for the index")
    if not p.exists():
        if not create:
            raise InputError(f"{path}: no such index (build one with `unspin index add`)")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise InputError(f"{path}: cannot create the index here (folder not writable)")


def _remove_index_files(path: str) -> None:
    for f in (path, path + "-wal", path + "-shm", path + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)


class Index:
    """A reference-document index in one SQLite file (created if missing, unless create=False).

    `created` is True when this object created the file; `abandon()` then removes it again if
    no document was written (for a run that fails)."""

    def __init__(self, path: str | os.PathLike, channel: Channel | None = None, create: bool = True):
        self.path = str(path)
        # The channel gives the synonym-class fingerprints and the alignment's substitutions.
        self.channel = channel if channel is not None else Channel.load_default()
        self.fingerprinter = Fingerprinter(self.channel)
        self.judge = SubstitutionJudge(self.channel, self.fingerprinter.canonical)
        self._db: sqlite3.Connection | None = None
        check_index_path(self.path, create)
        self.created = not Path(self.path).exists()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE name='band'").fetchone() is None:
                self._db.executescript(_SCHEMA)
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('kinds', ?)", (json.dumps(KINDS),))
            row = self._db.execute("SELECT value FROM meta WHERE key='kinds'").fetchone()
            if row is None or json.loads(row[0]) != json.loads(json.dumps(KINDS)):
                self._db.close()
                raise InputError(f"{self.path}: built with other fingerprint settings ({row[0] if row else '?'}); "
                                 f"rebuild it with this version")
        except BaseException as err:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self.created:  # a failed open leaves no file behind
                _remove_index_files(self.path)
            if isinstance(err, sqlite3.DatabaseError):
                raise InputError(f"{self.path}: cannot open or create the index ({err})") from None
            raise
        self.last_skipped = 0

    # -- context manager / lifetime
    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def abandon(self) -> None:
        """Close the index, and remove its file (with -wal and -shm) when this object created it
        and it holds no document: what a failed run calls, so it leaves no empty index behind."""
        if self._db is None:
            return
        empty = self.created and self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] == 0
        self.close()
        if empty:
            _remove_index_files(self.path)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def __contains__(self, doc_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM docs WHERE id=?", (str(doc_id),)).fetchone() is not None

    # -- writing
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def add(self, docs: Iterable[dict], progress: Callable[[int], None] | None = None) -> int:
        """Add (or replace, by id) documents `{"id", "text", ...metadata}`; returns how many were written.

        Rows with empty text are skipped (their number is in `last_skipped`). Within one call a
        repeated id is written twice, so the last one wins. `progress(n_written)` is called after
        each batch of `BATCH` documents is committed.
        """
        written = skipped = 0
        batch: list[tuple] = []
        for doc in docs:
            if not isinstance(doc, dict) or "id" not in doc:
                raise InputError("each document needs an 'id' and a 'text'")
            text = doc.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped += 1
                continue
            keys, n_words = self.fingerprinter.band_keys(text)
            meta = {k: v for k, v in doc.items() if k not in ("id", "text")}
            # default=str: Parquet metadata may hold dates, decimals or bytes
            batch.append((str(doc["id"]), text, json.dumps(meta, ensure_ascii=False, default=str), n_words, keys))
            if len(batch) >= BATCH:
                written += self._write(batch)
                batch = []
                if progress is not None:
                    progress(written)
        if batch:
            written += self._write(batch)
            if progress is not None:
                progress(written)
        self.last_skipped = skipped
        return written

    def _write(self, batch: list[tuple]) -> int:
        with self.transaction() as db:
            for doc_id, text, meta, n_words, keys in batch:
                self._delete(doc_id)
                blob = np.array(keys, dtype=np.int64).tobytes()
                cur = db.execute("INSERT INTO docs (id, text, meta, n_words, bands, added) VALUES (?, ?, ?, ?, ?, ?)",
                                 (doc_id, text, meta, n_words, blob, time.time()))
                rowid = cur.lastrowid
                db.executemany("INSERT INTO band (band_no, hash, doc) VALUES (?, ?, ?)",
                               [(b, h, rowid) for b, h in keys])
        return len(batch)

    def _delete(self, doc_id: str) -> bool:
        row = self._db.execute("SELECT rowid, bands FROM docs WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return False
        keys = np.frombuffer(row[1], dtype=np.int64).reshape(-1, 2).tolist()
        self._db.executemany("DELETE FROM band WHERE band_no=? AND hash=? AND doc=?",
                             [(b, h, row[0]) for b, h in keys])
        self._db.execute("DELETE FROM docs WHERE rowid=?", (row[0],))
        return True

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many existed."""
        with self.transaction():
            return sum(self._delete(str(i)) for i in ids)

    # -- reading
    def get(self, doc_id: str) -> dict | None:
        """{"id", "text", ...metadata} or None."""
        row = self._db.execute("SELECT id, text, meta FROM docs WHERE id=?", (str(doc_id),)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "text": row[1], **json.loads(row[2])}

    def candidate_documents(self, text: str, limit: int = 30) -> Iterator[tuple[str, str, int]]:
        """(doc_id, text, band hits) of the documents sharing LSH buckets with `text`, most hits first."""
        for rowid, hits in self.candidates(text, limit=limit):
            row = self._db.execute("SELECT id, text FROM docs WHERE rowid=?", (rowid,)).fetchone()
            if row is not None:
                yield row[0], row[1], hits

    def stats(self) -> dict:
        n_docs, n_words = self._db.execute("SELECT COUNT(*), COALESCE(SUM(n_words), 0) FROM docs").fetchone()
        n_bands = self._db.execute("SELECT COUNT(*) FROM band").fetchone()[0]
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return {"path": self.path, "documents": n_docs, "words": n_words, "band_rows": n_bands,
                "size_bytes": size, "num_perm": NUM_PERM, "kinds": [k[0] for k in KINDS]}

    def candidates(self, text: str, limit: int = 30, max_bucket: int = 2000) -> list[tuple[int, int]]:
        """(rowid, band hits) of the documents sharing LSH buckets with `text`, most hits first."""
        keys, _ = self.fingerprinter.band_keys(text)
        hits: dict[int, int] = {}
        for b, h in keys:
            rows = self._db.execute("SELECT doc FROM band WHERE band_no=? AND hash=? LIMIT ?",
                                    (b, h, max_bucket + 1)).fetchall()
            if len(rows) > max_bucket:
                continue  # a bucket this common says nothing
            for (d,) in rows:
                hits[d] = hits.get(d, 0) + 1
        return sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def trace(self, text: str, top: int = 5, **options) -> list[Match]:
        """The most likely sources of `text`, best first (see `unspin.trace.trace`)."""
        return trace(self, text, top=top, **options)


# ---- filling an index from input files ----------------------------------------------------
@dataclass
class AddSummary:
    """What `add_inputs` did: documents written, rows skipped for empty text or as bad rows, and
    the documents in the index afterwards."""

    added: int = 0
    skipped_empty: int = 0
    skipped_bad: int = 0
    documents: int = 0

    def to_dict(self) -> dict:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def add_inputs(index_path: str | os.PathLike, inputs: Sequence[str], *, strict: bool = False,
               id_column: str = "id", text_column: str = "text", max_bytes: int = MAX_DOCUMENT_BYTES,
               on_bad: Callable[[BadRow], None] | None = None, progress: Callable[[int], None] | None = None,
               channel: Channel | None = None) -> AddSummary:
    """Add (or replace, by id) the documents of INPUTS (files, folders, `-` for JSONL on stdin;
    see `unspin.inputs.iter_input_docs`) to the index at INDEX_PATH, in transactions of `BATCH`.

    Before anything is written, every input is checked (it exists, has a known format and the id
    and text columns) and so is the index path. Each bad row is passed to `on_bad` and skipped,
    the run goes on. With strict=True every input is first read in full, and the first bad row
    raises InputError with nothing written (stdin is copied to a temporary file to be read twice).
    `progress(n)` gets the number of documents written so far after each batch. A run that fails
    leaves no index file behind where there was none and nothing was written."""
    inputs = list(inputs)
    if inputs.count("-") > 1:
        raise InputError("stdin (-) can be read only once; give - once")
    for path in inputs:
        check_input(path, id_column, text_column)
    check_index_path(index_path)
    opts = dict(id_column=id_column, text_column=text_column, max_bytes=max_bytes)
    summary = AddSummary()
    with contextlib.ExitStack() as stack:
        sources: list[tuple[str, str | None]] = []  # (path to read, name in messages)
        for path in inputs:
            if strict and path == "-":
                sources.append((stack.enter_context(spool_stdin()), "stdin"))
            else:
                sources.append((path, None))
        if strict:
            for path, name in sources:
                try:
                    validate_input(path, name=name, **opts)
                except InputError as err:
                    raise InputError(f"{err}; nothing was written (strict mode)") from None

        def count_bad(bad: BadRow) -> None:
            summary.skipped_bad += 1
            if on_bad is not None:
                on_bad(bad)

        idx = Index(index_path, channel=channel)
        try:
            for path, name in sources:
                before = summary.added

                def on_batch(n_written: int, before: int = before) -> None:
                    if progress is not None:
                        progress(before + n_written)

                docs = iter_input_docs(path, name=name, on_bad=None if strict else count_bad, **opts)
                summary.added += idx.add(docs, progress=on_batch)
                summary.skipped_empty += idx.last_skipped
            summary.documents = len(idx)
        except BaseException:
            idx.abandon()
            raise
        idx.close()
    return summary
