"""A persistent, incremental index of reference documents for `trace` (one SQLite file).

Each document is stored with its text, its metadata (JSON) and the MinHash band keys of
`unspin.fingerprint` (over what spinners keep, and over synonym classes of the channel).

Candidates come from LSH banding stored in the table band(band_no, hash, doc) with an
index, so a query is a few dozen indexed lookups. Documents are written in batches of
500 per transaction: a kill mid-add loses at most the current batch, and an id is a
PRIMARY KEY whose bands are replaced in the same transaction, so nothing is duplicated.

    unspin index add --index refs.sqlite docs.jsonl folder/
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
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .fingerprint import KINDS, NUM_PERM, Fingerprinter
from .inputs import InputError
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
class Index:
    """A reference-document index in one SQLite file (created if missing, unless create=False)."""

    def __init__(self, path: str | os.PathLike, channel: Channel | None = None, create: bool = True):
        self.path = str(path)
        # The channel gives the synonym-class fingerprints and the alignment's substitutions.
        self.channel = channel if channel is not None else Channel.load_default()
        self.fingerprinter = Fingerprinter(self.channel)
        self.judge = SubstitutionJudge(self.channel, self.fingerprinter.canonical)
        p = Path(self.path)
        if p.is_dir():
            raise InputError(f"{self.path}: is a folder; give a file path for the index")
        if not p.exists():
            if not create:
                raise InputError(f"{self.path}: no such index (build one with `unspin index add`)")
            parent = p.parent if str(p.parent) else Path(".")
            if not parent.is_dir():
                raise InputError(f"{self.path}: folder {parent} does not exist")
            if not os.access(parent, os.W_OK):
                raise InputError(f"{self.path}: cannot create the index here (folder not writable)")
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
        except sqlite3.DatabaseError as err:
            raise InputError(f"{self.path}: cannot open or create the index ({err})") from None
        self.last_skipped = 0

    # -- context manager / lifetime
    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

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
            batch.append((str(doc["id"]), text, json.dumps(meta, ensure_ascii=False), n_words, keys))
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
