"""A persistent, incremental index of reference documents for `trace` (one SQLite file).

Each document is stored with its text, its metadata (JSON) and its keys from
`unspin.fingerprint`: MinHash band keys (over what spinners keep, and over synonym classes of
the channel) and one key per rare term (numbers, names, rare content words).

Candidates come from two paths over one table band(band_no, hash, doc) (a WITHOUT ROWID
B-tree, 31-bit hashes: about 16 bytes a row): LSH buckets (band_no < TERM_BAND) and rare-term
posting lists (band_no = TERM_BAND) scored BM25-style; a query is a few dozen indexed lookups.
Documents are written in batches of 500 per transaction: a kill mid-add loses at most the
current batch with its keys (bands and postings alike), and an id is a PRIMARY KEY whose keys
are replaced in the same transaction, so nothing is duplicated.

    unspin index add --index refs.sqlite docs.jsonl rows.csv.gz folder/ -
    unspin index stats --index refs.sqlite
    unspin index remove --index refs.sqlite ID...
    unspin index check --index refs.sqlite [--repair]

Document ids are strings (`Index.add` refuses an int id rather than store 1 and "1" as one
document; the file readers of `unspin index add` read every id as text). A damaged file gives
`IndexDamaged` (exit 2 on the command line) and `check_index` verifies and repairs one.

>>> with Index("refs.sqlite") as index:                       # doctest: +SKIP
...     index.add([{"id": "a1", "text": "The minister said the plan would cost more."}])
...     matches = index.trace("The minister mentioned the scheme would price extra.")
"""
from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import multiprocessing
import json
import math
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .fingerprint import KINDS, NUM_PERM, TERM_BAND, Fingerprinter
from .inputs import (MAX_DOCUMENT_BYTES, BadRow, InputError, check_input, check_new_file_path, iter_input_docs,
                     replace_surrogates, spool_stdin, validate_input)
from .lexicon import Channel
from .trace import Match, SubstitutionJudge, trace

BATCH = 500
SCHEMA_VERSION = 1
TERM_KIND = [k[0] for k in KINDS].index("term")
# SQLite's page cache per connection (KiB): a large index is built and queried through it.
CACHE_KIB = 65536
# A band bucket or a term's posting list with more documents than this is skipped by a query.
MAX_BUCKET = 2000
# Keys looked up in one SQL statement (two parameters each; SQLite allows 32,766).
KEYS_PER_QUERY = 500
# meta key of an unfinished bulk load: the first rowid whose key rows may be missing from `band`.
BULK_MARK = "bulk_pending_from"

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


_TABLES = ("meta", "docs", "band")
# What SQLite raises on a damaged file: its own errors, and UnicodeDecodeError when the message it
# reports quotes damaged bytes (a corrupt schema: "malformed database schema ... near ...").
SQLITE_ERRORS = (sqlite3.Error, UnicodeDecodeError)
_SQLITE_MAGIC = b"SQLite format 3\x00"


class IndexDamaged(InputError):
    """The index file is damaged (SQLite reports corruption, or its rows cannot be decoded).

    >>> issubclass(IndexDamaged, InputError)                          # so the CLI exits with status 2
    True
    """


def _repair_hint(path: str) -> str:
    return (f"run `unspin index check --index {path} --repair`, or build the index again from the documents "
            f"(`unspin index add`)")


def index_error(path: str, err: Exception) -> InputError:
    """The InputError a person can act on for an SQLite error on the index at `path`.

    >>> print(index_error("refs.sqlite", sqlite3.OperationalError("database is locked")))
    refs.sqlite: the index is locked by another process (database is locked); try again when it is done
    >>> type(index_error("refs.sqlite", sqlite3.DatabaseError("file is not a database"))).__name__
    'IndexDamaged'
    """
    if isinstance(err, UnicodeDecodeError):
        return IndexDamaged(f"{path}: the index file is damaged (SQLite reported an error that quotes damaged "
                            f"bytes); {_repair_hint(path)}")
    msg = str(err)
    low = msg.lower()
    if "locked" in low or "busy" in low:
        return InputError(f"{path}: the index is locked by another process ({msg}); try again when it is done")
    if "readonly" in low or "read-only" in low:
        return InputError(f"{path}: the index cannot be written ({msg}); check the file's permissions")
    if "disk is full" in low or "database or disk is full" in low:
        return InputError(f"{path}: the disk is full ({msg}); free some space and run again")
    if "not a database" in low:
        return IndexDamaged(f"{path}: not an unspin index, or its file is damaged ({msg}); {_repair_hint(path)}")
    return IndexDamaged(f"{path}: the index file is damaged ({msg}); {_repair_hint(path)}")


def check_path_argument(path, what: str = "Index") -> str:
    """`path` as a str; TypeError for what is not a path (None, a number, bytes), InputError for "".

    >>> check_path_argument(Path("refs.sqlite"))
    'refs.sqlite'
    >>> check_path_argument(None)
    Traceback (most recent call last):
    ...
    TypeError: Index: expected a path (str or os.PathLike), got NoneType None
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: expected a path (str or os.PathLike), got {type(path).__name__} {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str):  # a PathLike of bytes
        raise TypeError(f"{what}: expected a path (str or os.PathLike), got a path of bytes {text!r}")
    if not text.strip():
        raise InputError(f"{what}: the path is empty; give a file path for the index")
    return text


def encode_keys(keys: Sequence[tuple[int, int]]) -> bytes:
    """The compact form of a document's keys stored in docs.bands: int32 counts of keys per kind
    (KINDS order), then the hashes (4 bytes a key; band numbers follow from the kind and order).

    >>> decode_bands(encode_keys([(0, 12), (1, 7), (1000, 34), (TERM_BAND, 5)]))
    [[0, 12], [1, 7], [1000, 34], [2000, 5]]
    """
    counts = [0] * len(KINDS)
    for b, _ in keys:
        counts[TERM_KIND if b == TERM_BAND else b // 1000] += 1
    return np.array(counts + [h for _, h in keys], dtype=np.int32).tobytes()


def decode_bands(blob, where: str = "a document") -> list[list[int]]:
    """The (band_no, hash) keys stored in docs.bands (`encode_keys`); IndexDamaged when the blob
    is not such keys.

    >>> decode_bands(b"abc")
    Traceback (most recent call last):
    ...
    unspin.index.IndexDamaged: the band keys of a document are unreadable
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) % 4 or len(blob) < 4 * len(KINDS):
        raise IndexDamaged(f"the band keys of {where} are unreadable")
    arr = np.frombuffer(blob, dtype=np.int32)
    counts, hashes = arr[:len(KINDS)].tolist(), arr[len(KINDS):].tolist()
    if any(c < 0 for c in counts) or sum(counts) != len(hashes) or any(h < 0 for h in hashes):
        raise IndexDamaged(f"the band keys of {where} are unreadable")
    out, pos = [], 0
    for kind_no, c in enumerate(counts):
        for b in range(c):
            out.append([TERM_BAND if kind_no == TERM_KIND else kind_no * 1000 + b, hashes[pos]])
            pos += 1
    return out


def _doc_label(doc, n: int) -> str:
    if isinstance(doc, Mapping) and isinstance(doc.get("id"), str):
        return f"document {n} (id {doc['id']!r})"
    return f"document {n}"


# ---- the index --------------------------------------------------------------------------
def check_index_path(path: str | os.PathLike, create: bool = True) -> None:
    """Raise InputError, before any work, for a path where no index can be opened or created:
    a folder, a missing index (create=False), or a missing or read-only folder.

    >>> check_index_path("/")
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: /: is a folder; give a file name for the index
    >>> check_index_path("no-such-refs.sqlite", create=False)
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: no-such-refs.sqlite: no such index (build one with `unspin index add`)
    """
    if not create and not Path(path).is_dir() and not Path(path).exists():
        raise InputError(f"{path}: no such index (build one with `unspin index add`)")
    check_new_file_path(path, "the index")


def _remove_index_files(path: str) -> None:
    for f in (path, path + "-wal", path + "-shm", path + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)


class Index:
    """A reference-document index in one SQLite file (created if missing, unless create=False).

    `path` is a str or os.PathLike (TypeError otherwise). Document ids are non-empty strings:
    an int id is refused (TypeError) rather than stored as text, so 1 and "1" can never be
    one document by accident. `remove("a1")` removes the one document "a1"; `remove([...])`
    takes an iterable of ids. SQLite errors become InputError (`IndexDamaged` for a damaged
    file, with what to do); a closed index raises ValueError.

    `created` is True when this object created the file; `abandon()` then removes it again if
    no document was written (for a run that fails).

    >>> index = Index("refs.sqlite")                                  # doctest: +SKIP
    >>> index.add([{"id": "a1", "text": "The minister said the plan would cost more.",
    ...             "url": "https://example.org/a1"}])                # doctest: +SKIP
    1
    >>> len(index), "a1" in index                                     # doctest: +SKIP
    (1, True)
    """

    def __init__(self, path: str | os.PathLike, channel: Channel | None = None, create: bool = True):
        self._db: sqlite3.Connection | None = None
        self.path = check_path_argument(path)
        if channel is not None and not isinstance(channel, Channel):
            raise TypeError(f"Index: channel must be a unspin.lexicon.Channel or None, got {type(channel).__name__}")
        if not isinstance(create, bool):
            raise TypeError(f"Index: create must be True or False, got {type(create).__name__} {create!r}")
        check_index_path(self.path, create)
        # The channel gives the synonym-class fingerprints and the alignment's substitutions.
        self.channel = channel if channel is not None else Channel.load_default()
        self.fingerprinter = Fingerprinter(self.channel)
        self.judge = SubstitutionJudge(self.channel, self.fingerprinter.canonical)
        self.created = not Path(self.path).exists()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables & set(_TABLES) and tables:  # refused before anything is written into it
                raise InputError(f"{self.path}: an SQLite file but not an unspin index (it holds tables "
                                 f"{', '.join(sorted(tables))}); give another path")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if not tables:  # a new (or empty) file: the whole schema in one transaction, so that
                # a kill leaves either no tables (opened again as a new index) or all of them
                with write_transaction(self._db) as db:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    db.execute("INSERT OR IGNORE INTO meta VALUES ('kinds', ?)", (json.dumps(KINDS),))
            elif not set(_TABLES) <= tables:
                raise IndexDamaged(f"{self.path}: the index file is damaged (table "
                                   f"{', '.join(t for t in _TABLES if t not in tables)} missing); "
                                   f"{_repair_hint(self.path)}")
            row = self._db.execute("SELECT value FROM meta WHERE key='kinds'").fetchone()
            try:
                same = row is not None and json.loads(row[0]) == json.loads(json.dumps(KINDS))
            except (TypeError, ValueError):
                same = False
            if not same:
                raise InputError(f"{self.path}: built with other fingerprint settings ({row[0] if row else '?'}); "
                                 f"rebuild it with this version (`unspin index check --index {self.path} --repair` "
                                 f"fingerprints its documents again)")
        except BaseException as err:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self.created:  # a failed open leaves no file behind
                _remove_index_files(self.path)
            if isinstance(err, SQLITE_ERRORS):
                if self.created:
                    raise InputError(f"{self.path}: cannot create the index ({err})") from None
                raise index_error(self.path, err) from None
            raise
        self.last_skipped = 0
        self._doc_count: int | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        """The open connection; ValueError once the index is closed."""
        if self._db is None:
            raise ValueError(f"{self.path}: the index is closed")
        return self._db

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite errors (a damaged file, a lock held too long) become an InputError that says what to do."""
        try:
            yield
        except SQLITE_ERRORS as err:
            raise index_error(self.path, err) from None

    # -- context manager / lifetime
    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the SQLite connection (idempotent).

        >>> index.close(); index.close()                              # doctest: +SKIP
        """
        if self._db is not None:
            self._db.close()
            self._db = None

    def abandon(self) -> None:
        """Close the index, and remove its file (with -wal and -shm) when this object created it
        and it holds no document: what a failed run calls, so it leaves no empty index behind.

        >>> index = Index("new.sqlite"); index.abandon()               # doctest: +SKIP
        >>> os.path.exists("new.sqlite")                              # doctest: +SKIP
        False
        """
        if self._db is None:
            return
        try:
            empty = self.created and self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] == 0
        except SQLITE_ERRORS:  # a damaged file is left for `index check` to look at
            empty = False
        self.close()
        if empty:
            _remove_index_files(self.path)

    def __len__(self) -> int:
        with self._guard():
            return self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def __contains__(self, doc_id: str) -> bool:
        doc_id = _check_id(doc_id)
        with self._guard():
            return self._conn.execute("SELECT 1 FROM docs WHERE id=?", (doc_id,)).fetchone() is not None

    # -- writing
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any error.

        >>> with index.transaction() as db:                           # doctest: +SKIP
        ...     n = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        """
        with write_transaction(self._conn, guard=self._guard) as db:
            yield db

    def _prepare(self, doc, n: int) -> tuple | None:
        """A document as (id, text, metadata JSON) to fingerprint and write, None for empty text;
        TypeError / InputError for a bad one."""
        if not isinstance(doc, Mapping):
            raise TypeError(f"{_doc_label(doc, n)}: expected a dict {{'id': str, 'text': str, ...metadata}}, "
                            f"got {type(doc).__name__}")
        missing = [k for k in ("id", "text") if k not in doc]
        if missing:
            raise InputError(f"{_doc_label(doc, n)}: each document needs an 'id' and a 'text' "
                             f"(no {' or '.join(map(repr, missing))})")
        doc_id = _check_id(doc["id"], _doc_label(doc, n))
        text = doc["text"]
        if not isinstance(text, str):
            raise TypeError(f"{_doc_label(doc, n)}: 'text' must be a str, got {type(text).__name__}")
        if not text.strip():
            return None
        text = replace_surrogates(text)  # what UTF-8 (and SQLite) cannot store; offsets kept
        meta = {k: v for k, v in doc.items() if k not in ("id", "text")}
        try:
            # default=str: Parquet metadata may hold dates, decimals or bytes
            meta_json = json.dumps(meta, ensure_ascii=False, default=str)
            try:
                meta_json.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: kept exactly, as a JSON escape
                meta_json = json.dumps(meta, ensure_ascii=True, default=str)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{_doc_label(doc, n)}: its metadata cannot be stored as JSON ({err})") from None
        return doc_id, text, meta_json

    def add(self, docs: Iterable[dict], progress: Callable[[int], None] | None = None, *, workers: int = 1,
            bulk: bool = False) -> int:
        """Add (or replace, by id) documents `{"id": str, "text": str, ...metadata}`; returns how many
        were written.

        Rows with empty text are skipped (their number is in `last_skipped`). Within one call a
        repeated id is written twice, so the last one wins. `progress(n_written)` is called after
        each batch of `BATCH` documents is committed. Lone surrogates in the text become U+FFFD.

        `workers` > 1 fingerprints in that many worker processes (forked; the one SQLite writer
        stays here) while the batches before are written. `bulk=True` is for a large first load:
        each batch writes its documents and their stored keys but not their rows in the key table,
        which is filled once at the end in key order (`finish_bulk`: sequential pages instead of
        a random page per key). Until then, queries do not see the batches written; a kill leaves
        whole batches as ever, and `finish_bulk` or `check_index(repair=True)` completes them.
        With workers, a kill (or KeyboardInterrupt) also loses the `workers` batches being
        fingerprinted: `progress` counts only what is committed.

        A document that is not a dict, has no 'id' or 'text', an id that is not a non-empty str
        (ids are strings: 1 and "1" would be one document) or a text that is not a str raises
        TypeError or InputError; the documents before it are written first.

        >>> index.add([{"id": "a1", "text": "The minister said the plan would cost more."},
        ...            {"id": "b2", "text": "   "}])                   # doctest: +SKIP
        1
        >>> index.last_skipped                                        # doctest: +SKIP
        1
        """
        if isinstance(docs, (str, bytes, Mapping)):
            raise TypeError(f"Index.add: expected an iterable of documents (dicts), got {type(docs).__name__}")
        if progress is not None and not callable(progress):
            raise TypeError(f"Index.add: progress must be a function or None, got {type(progress).__name__}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise TypeError(f"Index.add: workers must be an int >= 1, got {workers!r}")
        if not isinstance(bulk, bool):
            raise TypeError(f"Index.add: bulk must be True or False, got {type(bulk).__name__}")
        written = skipped = 0
        batch: list[tuple] = []
        with _keying(self.fingerprinter, workers) as keyer:
            in_flight: collections.deque = collections.deque()  # (rows, their keys to come), in input order

            def write_ready(keep: int) -> None:
                nonlocal written
                while len(in_flight) > keep:
                    rows, keys_of = in_flight.popleft()
                    written += self._write([(*row, *keys) for row, keys in zip(rows, keys_of())], bulk=bulk)
                    if progress is not None:
                        progress(written)

            def submit() -> None:
                nonlocal batch
                if batch:
                    in_flight.append((batch, keyer([text for _, text, _ in batch])))
                    batch = []
                write_ready(keyer.ahead)

            documents = iter(docs)
            try:
                for n in itertools.count(1):
                    try:
                        doc = next(documents)
                    except StopIteration:
                        break
                    except Exception:  # the input failed (a reader's error): what is fingerprinted is written
                        write_ready(0)
                        if bulk:
                            self.finish_bulk()
                        raise
                    try:
                        row = self._prepare(doc, n)
                    except (TypeError, InputError):
                        submit()
                        write_ready(0)
                        if bulk:
                            self.finish_bulk()
                        raise
                    if row is None:
                        skipped += 1
                        continue
                    batch.append(row)
                    if len(batch) >= BATCH:
                        submit()
                submit()
                write_ready(0)
            finally:
                self.last_skipped = skipped
        if bulk:
            self.finish_bulk()
        return written

    def _write(self, batch: list[tuple], bulk: bool = False) -> int:
        """Write one batch of (id, text, meta, keys, n_words) in one transaction; bulk: without their
        rows in the key table (left for `finish_bulk`, from the first rowid written on)."""
        self._doc_count = None
        # The key rows of a batch go in together, sorted: neighbouring B-tree pages instead of one
        # random page per row (what makes a large index slow to build).
        pending: list[tuple[int, int, int]] = []
        pending_ids: set[str] = set()

        def flush(db: sqlite3.Connection) -> None:
            pending.sort()
            db.executemany("INSERT INTO band (band_no, hash, doc) VALUES (?, ?, ?)", pending)
            pending.clear()
            pending_ids.clear()

        with self.transaction() as db, self._guard():
            if bulk:  # from this rowid on, documents may lack their key rows (the smallest such mark wins)
                first = db.execute("SELECT COALESCE(MAX(rowid), 0) + 1 FROM docs").fetchone()[0]
                mark = _bulk_mark(db)
                if mark is None or first < mark:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (BULK_MARK, str(first)))
            for doc_id, text, meta, keys, n_words in batch:
                if doc_id in pending_ids:  # an id twice in one batch: its first keys must be in place to go
                    flush(db)
                self._delete(doc_id)
                cur = db.execute("INSERT INTO docs (id, text, meta, n_words, bands, added) VALUES (?, ?, ?, ?, ?, ?)",
                                 (doc_id, text, meta, n_words, encode_keys(keys), time.time()))
                if not bulk:
                    pending.extend((b, h, cur.lastrowid) for b, h in keys)
                    pending_ids.add(doc_id)
            flush(db)
        return len(batch)

    def bulk_pending(self) -> bool:
        """Whether a bulk load left documents whose rows are not in the key table yet (`finish_bulk`)."""
        with self._guard():
            return _bulk_mark(self._conn) is not None

    def finish_bulk(self) -> int:
        """Put the keys of the documents of an unfinished bulk load into the key table, in key
        order, in one transaction (a kill rolls it back; run it again, or `check_index(repair=True)`).
        Returns the number of key rows added; 0 when no bulk load is pending.

        >>> index.add(docs, bulk=True); index.bulk_pending()           # doctest: +SKIP
        False
        """
        self._doc_count = None
        with self.transaction() as db, self._guard():
            return _finish_bulk(db)

    def _delete(self, doc_id: str) -> bool:
        db = self._conn
        row = db.execute("SELECT rowid, bands FROM docs WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return False
        try:
            keys = decode_bands(row[1], f"document {doc_id!r}")
        except IndexDamaged as err:
            raise IndexDamaged(f"{self.path}: the index file is damaged ({err}); {_repair_hint(self.path)}") from None
        db.executemany("DELETE FROM band WHERE band_no=? AND hash=? AND doc=?", [(b, h, row[0]) for b, h in keys])
        db.execute("DELETE FROM docs WHERE rowid=?", (row[0],))
        return True

    def remove(self, ids: str | Iterable[str]) -> int:
        """Remove documents by id; returns how many existed. A str is one id (`remove("a1")`),
        otherwise an iterable of str ids; TypeError for anything else (an int id, bytes).

        >>> index.remove("a1"), index.remove(["a1", "zz"])            # doctest: +SKIP
        (1, 0)
        """
        if isinstance(ids, str):
            ids = [ids]
        elif isinstance(ids, (bytes, bytearray, Mapping)) or not isinstance(ids, Iterable):
            raise TypeError(f"Index.remove: expected an id (str) or an iterable of ids, got {type(ids).__name__}")
        ids = [_check_id(i) for i in ids]
        self._doc_count = None
        with self.transaction(), self._guard():
            return sum(self._delete(i) for i in ids)

    # -- reading
    def get(self, doc_id: str) -> dict | None:
        """{"id", "text", ...metadata} or None.

        >>> index.get("a1")                                           # doctest: +SKIP
        {'id': 'a1', 'text': 'The minister said the plan would cost more.', 'url': 'https://example.org/a1'}
        >>> index.get("zz") is None                                   # doctest: +SKIP
        True
        """
        doc_id = _check_id(doc_id)
        with self._guard():
            row = self._conn.execute("SELECT id, text, meta FROM docs WHERE id=?", (doc_id,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[1], str):
            raise IndexDamaged(f"{self.path}: the index file is damaged (the text of document {doc_id!r} is "
                               f"{type(row[1]).__name__}); {_repair_hint(self.path)}")
        try:
            meta = json.loads(row[2])
            if not isinstance(meta, dict):
                raise ValueError("not an object")
        except (TypeError, ValueError):
            raise IndexDamaged(f"{self.path}: the index file is damaged (the metadata of document {doc_id!r} is "
                               f"unreadable); {_repair_hint(self.path)}") from None
        return {"id": row[0], "text": row[1], **meta}

    def candidate_documents(self, text: str, limit: int = 30, min_hits: int = 0) -> Iterator[tuple[str, str, int]]:
        """(doc_id, text, band hits) of the documents sharing LSH buckets with `text`, most hits first;
        among the first `limit` candidates, those with at least `min_hits` (the others' texts are not read).

        >>> [(doc_id, hits) for doc_id, _, hits in index.candidate_documents(spun_copy_of_a1)]  # doctest: +SKIP
        [('a1', 73)]
        """
        for rowid, hits in self.candidates(text, limit=limit):
            if hits < min_hits:
                continue
            with self._guard():
                row = self._conn.execute("SELECT id, text FROM docs WHERE rowid=?", (rowid,)).fetchone()
            if row is not None:
                if not (isinstance(row[0], str) and isinstance(row[1], str)):
                    raise IndexDamaged(f"{self.path}: the index file is damaged (document rowid {rowid} holds "
                                       f"{type(row[0]).__name__} / {type(row[1]).__name__} where text belongs); "
                                       f"{_repair_hint(self.path)}")
                yield row[0], row[1], hits

    def stats(self) -> dict:
        """Counts and settings of the index (what `unspin index stats` prints); `band_rows` counts
        every key row, `term_postings` those of the rare terms among them; `bulk_pending`: a bulk
        load's key rows are not in yet (`finish_bulk`).

        >>> stats = index.stats()                                     # doctest: +SKIP
        >>> stats["documents"], stats["words"], stats["band_rows"], stats["term_postings"]  # doctest: +SKIP
        (2, 70, 98, 38)
        """
        with self._guard():
            db = self._conn
            n_docs, n_words = db.execute("SELECT COUNT(*), COALESCE(SUM(n_words), 0) FROM docs").fetchone()
            n_bands = db.execute("SELECT COUNT(*) FROM band").fetchone()[0]
            n_terms = db.execute("SELECT COUNT(*) FROM band WHERE band_no=?", (TERM_BAND,)).fetchone()[0]
            pending = _bulk_mark(db) is not None
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return {"path": self.path, "documents": n_docs, "words": n_words, "band_rows": n_bands,
                "term_postings": n_terms, "bulk_pending": pending,
                "size_bytes": size, "num_perm": NUM_PERM, "kinds": [k[0] for k in KINDS]}

    def candidates(self, text: str, limit: int = 30, max_bucket: int = MAX_BUCKET) -> list[tuple[int, int]]:
        """(rowid, evidence) of candidate sources of `text` from two paths, merged: the documents
        sharing LSH buckets (most band hits first) and those sharing rare terms (numbers, names,
        rare content words), scored BM25-style (the sum of the shared terms' idf, binary term
        frequency). The two lists interleaved best first; `evidence` is the number of
        shared buckets and terms; `limit` in all. A bucket or posting list over `max_bucket`
        documents says nothing and is skipped.

        >>> index.candidates(spun_copy_of_a1)                         # doctest: +SKIP
        [(1, 37)]
        """
        if not isinstance(text, str):
            raise TypeError(f"expected the query text as a str, got {type(text).__name__}")
        keys, _ = self.fingerprinter.band_keys(replace_surrogates(text))
        return self.candidates_of_keys(keys, limit, max_bucket)

    def candidates_of_keys(self, keys: Sequence[tuple[int, int]], limit: int = 30,
                           max_bucket: int = MAX_BUCKET) -> list[tuple[int, int]]:
        """`candidates` for keys already made (`Fingerprinter.band_keys`): e.g. the rare-term keys alone.

        >>> index.candidates_of_keys([k for k in keys if k[0] == TERM_BAND])   # doctest: +SKIP
        [(1, 5)]
        """
        band_hits: collections.Counter[int] = collections.Counter()
        term_hits: collections.Counter[int] = collections.Counter()
        term_score: dict[int, float] = {}
        with self._guard():
            n_docs = max(self._n_docs(), 1)
            buckets = self._buckets(keys, max_bucket + 1)
        for key in keys:
            docs = buckets.get(key, ())
            if len(docs) > max_bucket:
                continue  # a bucket this common says nothing
            if key[0] == TERM_BAND:
                idf = math.log(1.0 + (n_docs - len(docs) + 0.5) / (len(docs) + 0.5))
                term_hits.update(docs)
                for d in docs:  # summed key by key, in key order (the same floats every time)
                    term_score[d] = term_score.get(d, 0.0) + idf
            else:
                band_hits.update(docs)
        # the best first, ties by document number: a heap of (-evidence, doc) pairs, not a full sort
        by_bands = [d for _, d in heapq.nsmallest(limit, ((-n, d) for d, n in band_hits.items()))]
        by_terms = [d for _, d in heapq.nsmallest(limit, ((-x, d) for d, x in term_score.items()))]
        merged: list[int] = []
        for pair in itertools.zip_longest(by_bands, by_terms):
            merged.extend(d for d in pair if d is not None and d not in merged)
        return [(d, band_hits.get(d, 0) + term_hits.get(d, 0)) for d in merged[:limit]]

    def _buckets(self, keys: Sequence[tuple[int, int]], limit: int) -> dict[tuple[int, int], list[int]]:
        """{(band_no, hash): the first `limit` documents of its bucket} for the `keys`, in one query per
        `KEYS_PER_QUERY` keys (a query per key cost more in statement calls than in the lookups)."""
        unique = list(dict.fromkeys(keys))
        out: dict[tuple[int, int], list[int]] = {}
        for start in range(0, len(unique), KEYS_PER_QUERY):
            chunk = unique[start:start + KEYS_PER_QUERY]
            # each key's bucket read in key order up to `limit`, as one comma-joined list
            sql = ("SELECT k.column1, k.column2, (SELECT group_concat(doc) FROM (SELECT doc FROM band "
                   "WHERE band_no=k.column1 AND hash=k.column2 LIMIT ?)) FROM (VALUES "
                   + ",".join(["(?,?)"] * len(chunk)) + ") AS k")
            params = [limit, *(x for key in chunk for x in key)]
            for band_no, band_hash, docs in self._conn.execute(sql, params):
                try:
                    out[(band_no, band_hash)] = [int(d) for d in str(docs).split(",")] if docs else []
                except ValueError:
                    raise IndexDamaged(f"{self.path}: the index file is damaged (a band row holds {str(docs)[:40]!r} "
                                       f"where document numbers belong); {_repair_hint(self.path)}") from None
        return out

    def _n_docs(self) -> int:
        """The number of documents (cached between writes: the idf of every query needs it)."""
        if self._doc_count is None:
            self._doc_count = self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        return self._doc_count

    def trace(self, text: str, top: int = 5, **options) -> list[Match]:
        """The most likely sources of `text`, best first (see `unspin.trace.trace`).

        >>> [m.to_dict() for m in index.trace(spun_copy_of_a1)]       # doctest: +SKIP
        [{'doc_id': 'a1', 'score': 1.0, 'coverage': 1.0, 'reliable': True}]
        """
        return trace(self, text, top=top, **options)


class _InlineKeyer:
    """Fingerprints a batch here, when its keys are asked for (`ahead`: no batch waits)."""

    ahead = 0

    def __init__(self, fingerprinter: Fingerprinter):
        self.fingerprinter = fingerprinter

    def __call__(self, texts: list[str]) -> Callable[[], list]:
        return lambda: [self.fingerprinter.band_keys(t) for t in texts]


class _PoolKeyer:
    """Fingerprints batches in worker processes; `ahead` batches are fingerprinted while one is written."""

    def __init__(self, pool, workers: int):
        self.pool = pool
        self.ahead = workers

    def __call__(self, texts: list[str]) -> Callable[[], list]:
        return self.pool.apply_async(_keys_in_worker, (texts,)).get


_WORKER_FINGERPRINTER: Fingerprinter | None = None


def _start_worker(fingerprinter: Fingerprinter) -> None:
    global _WORKER_FINGERPRINTER
    _WORKER_FINGERPRINTER = fingerprinter


def _keys_in_worker(texts: list[str]) -> list:
    return [_WORKER_FINGERPRINTER.band_keys(t) for t in texts]


@contextlib.contextmanager
def _keying(fingerprinter: Fingerprinter, workers: int) -> Iterator[Callable[[list[str]], Callable[[], list]]]:
    """What fingerprints the batches of `Index.add`: here, or in `workers` forked processes (which
    inherit the loaded channel; where fork is unavailable, here)."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield _InlineKeyer(fingerprinter)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker, initargs=(fingerprinter,))
    try:
        yield _PoolKeyer(pool, workers)
    finally:
        pool.terminate()
        pool.join()


def _bulk_mark(db: sqlite3.Connection) -> int | None:
    """The first rowid of an unfinished bulk load (`BULK_MARK`), or None."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (BULK_MARK,)).fetchone()
    try:
        return int(row[0]) if row is not None else None
    except (TypeError, ValueError):
        return 1  # unreadable: every document may lack its keys


def _finish_bulk(db: sqlite3.Connection) -> int:
    """Inside a write transaction: the stored keys of the documents from the bulk mark on, into the
    key table in key order (a temporary table, then one sorted INSERT ... SELECT: SQLite sorts on
    disk and the key table's pages are written in order); the mark removed. Returns the rows added."""
    mark = _bulk_mark(db)
    if mark is None:
        return 0
    db.execute("DROP TABLE IF EXISTS temp.bulk_keys")
    db.execute("CREATE TEMP TABLE bulk_keys (band_no INTEGER NOT NULL, hash INTEGER NOT NULL, doc INTEGER NOT NULL)")
    cur = db.execute("SELECT rowid, bands FROM docs WHERE rowid >= ? ORDER BY rowid", (mark,))
    while True:
        rows = cur.fetchmany(1000)
        if not rows:
            break
        keys = []
        for rowid, blob in rows:
            keys.extend((b, h, rowid) for b, h in decode_bands(blob, f"document rowid {rowid}"))
        db.executemany("INSERT INTO temp.bulk_keys VALUES (?, ?, ?)", keys)
    # OR IGNORE: documents added after the mark by a plain `add` have their rows already
    n = db.execute("INSERT OR IGNORE INTO band (band_no, hash, doc) SELECT band_no, hash, doc FROM temp.bulk_keys "
                   "ORDER BY band_no, hash, doc").rowcount
    db.execute("DROP TABLE temp.bulk_keys")
    db.execute("DELETE FROM meta WHERE key=?", (BULK_MARK,))
    return n


def _check_id(doc_id, where: str = "") -> str:
    """A document id: a non-empty str (TypeError for an int, bytes, None; InputError for "")."""
    prefix = f"{where}: " if where else ""
    if not isinstance(doc_id, str):
        hint = f" (ids are strings: give {str(doc_id)!r})" if isinstance(doc_id, int) and not isinstance(
            doc_id, bool) else ""
        raise TypeError(f"{prefix}a document id must be a str, got {type(doc_id).__name__} {doc_id!r}{hint}")
    if not doc_id.strip():
        raise InputError(f"{prefix}a document id must not be empty")
    if replace_surrogates(doc_id) != doc_id:
        raise InputError(f"{prefix}the document id {doc_id!r} is not valid Unicode (a lone surrogate)")
    return doc_id


# ---- filling an index from input files ----------------------------------------------------
@dataclass
class AddSummary:
    """What `add_inputs` did: documents written, rows skipped for empty text or as bad rows, and
    the documents in the index afterwards.

    >>> AddSummary(added=2, skipped_bad=1, documents=2).to_dict()
    {'added': 2, 'skipped_empty': 0, 'skipped_bad': 1, 'documents': 2}
    """

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
               channel: Channel | None = None, workers: int = 1, bulk: bool = False) -> AddSummary:
    """Add (or replace, by id) the documents of INPUTS (files, folders, `-` for JSONL on stdin;
    see `unspin.inputs.iter_input_docs`) to the index at INDEX_PATH, in transactions of `BATCH`.

    Before anything is written, every input is checked (it exists, has a known format and the id
    and text columns) and so is the index path. Each bad row is passed to `on_bad` and skipped,
    the run goes on. With strict=True every input is first read in full, and the first bad row
    raises InputError with nothing written (stdin is copied to a temporary file to be read twice).
    `progress(n)` gets the number of documents written so far after each batch. A run that fails
    leaves no index file behind where there was none and nothing was written. `workers` and
    `bulk`: as in `Index.add` (fingerprinting processes; a large first load's key table filled
    once at the end of each input).

    >>> add_inputs("refs.sqlite", ["docs.jsonl"], on_bad=print)       # doctest: +SKIP
    docs.jsonl:2: row is not valid JSON (Expecting value, column 1)
    AddSummary(added=1, skipped_empty=0, skipped_bad=1, documents=1)
    """
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
                summary.added += idx.add(docs, progress=on_batch, workers=workers, bulk=bulk)
                summary.skipped_empty += idx.last_skipped
            summary.documents = len(idx)
        except BaseException:
            idx.abandon()
            raise
        idx.close()
    return summary


# ---- verifying and repairing an index file -------------------------------------------------
# What `unspin index check [--repair]` runs. An index can be damaged by a disk or copy gone
# wrong (SQLite pages overwritten), by tools that edit the file, or by an older unspin; a kill
# or a power cut during `add` cannot damage it (WAL transactions, see the kill tests).

MAX_LISTED = 10  # problems of one kind listed one by one; the rest are counted


@dataclass
class _Scan:
    """What `_scan` found in an index file."""

    problems: list[str] = field(default_factory=list)
    fatal: str | None = None              # why nothing more can be read (no SQLite file, no unspin tables)
    sqlite_ok: bool = True                # PRAGMA integrity_check said "ok"
    documents: int = 0
    bad_bands: list[tuple[int, str]] = field(default_factory=list)   # (rowid, id): unreadable docs.bands
    bad_meta: list[tuple[int, str]] = field(default_factory=list)    # (rowid, id): unreadable docs.meta
    bad_id: list[tuple[int, str]] = field(default_factory=list)      # (rowid, id): id not valid text
    bad_text: list[tuple[int, str]] = field(default_factory=list)    # (rowid, id): text not valid text
    missing_bands: int = 0
    orphan_bands: int = 0
    meta_fix: bool = False                # schema_version missing or other than this version's
    empty: bool = False                   # an SQLite file without tables (an index never written)
    kinds_differ: bool = False
    bulk_pending: bool = False            # a bulk load's final step (its key rows) did not run


def _utf8(raw) -> str | None:
    """Bytes read with CAST(... AS BLOB) as text, or None when they are not UTF-8 (or missing)."""
    if raw is None:
        return None
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED:,} more" if len(items) > MAX_LISTED else "")


def _file_problem(path: str) -> str | None:
    """Why `path` cannot be an index file at all (None when it can)."""
    p = Path(path)
    if not p.exists():
        return f"{path}: no such index"
    if p.is_dir():
        return f"{path}: is a folder, not an index file"
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as err:
        return f"{path}: cannot read ({err.strerror or err})"
    if head and head != _SQLITE_MAGIC:
        return "the file is not an SQLite database (its header is damaged, or it is another kind of file)"
    return None


def _scan(db: sqlite3.Connection, deep_sqlite: bool = True) -> _Scan:
    """SQLite's integrity check, then unspin's own: tables and meta, every document's stored band
    keys present in the band table, no band row without its document, rows decodable."""
    scan = _Scan()
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except SQLITE_ERRORS as err:
        scan.fatal = f"SQLite cannot read the file's schema ({err})"
        scan.problems.append(scan.fatal)
        scan.sqlite_ok = False
        return scan
    if not tables:  # what a run stopped before its first write leaves; `Index` opens it as a new index
        scan.empty = True
        return scan
    if not tables & set(_TABLES):
        scan.fatal = f"not an unspin index (it holds tables {', '.join(sorted(tables))})"
        scan.problems.append(scan.fatal)
        return scan
    if deep_sqlite:
        try:
            rows = [line for r in db.execute("PRAGMA integrity_check(100)") for line in str(r[0]).splitlines()
                    if line.strip() and not line.startswith("*** in database")]
        except SQLITE_ERRORS as err:
            rows = [f"the check itself failed ({err})"]
        if rows != ["ok"]:
            scan.sqlite_ok = False
            scan.problems += [f"sqlite: {r}" for r in rows[:MAX_LISTED]]
            if len(rows) > MAX_LISTED:
                scan.problems.append(f"sqlite: {len(rows) - MAX_LISTED} more problems (at least)")
    missing_tables = [t for t in _TABLES if t not in tables]
    if missing_tables:
        scan.fatal = f"table {', '.join(missing_tables)} missing"
        scan.problems.append(scan.fatal)
        return scan
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except SQLITE_ERRORS as err:
        meta = {}
        scan.problems.append(f"meta table unreadable ({err})")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        scan.meta_fix = True
        scan.problems.append(f"meta: schema_version is {meta.get('schema_version')!r}, expected "
                             f"{str(SCHEMA_VERSION)!r}")
    try:
        kinds_ok = json.loads(meta.get("kinds", "null")) == json.loads(json.dumps(KINDS))
    except (TypeError, ValueError):
        kinds_ok = False
    if not kinds_ok:
        scan.kinds_differ = True
        scan.problems.append(f"meta: fingerprint kinds are {meta.get('kinds')!r}, this version uses "
                             f"{json.dumps(KINDS)} (the documents must be fingerprinted again)")
    if BULK_MARK in meta:
        scan.bulk_pending = True
        scan.problems.append(f"an unfinished bulk load: the documents from rowid {meta[BULK_MARK]} on may lack their "
                             f"rows in the key table (queries miss them; --repair adds them)")
    # Every document's stored keys, in a temporary table to compare with the band table.
    try:
        db.execute("DROP TABLE IF EXISTS temp.expected")
        db.execute("DROP TABLE IF EXISTS temp.expected_unsorted")
        db.execute("CREATE TEMP TABLE expected (band_no INTEGER NOT NULL, hash INTEGER NOT NULL, doc INTEGER NOT "
                   "NULL, PRIMARY KEY (band_no, hash, doc)) WITHOUT ROWID")
        # appended here first, then copied in key order: sequential pages (a large index has tens of
        # millions of keys, which inserted in document order would each land on a random page)
        db.execute("CREATE TEMP TABLE expected_unsorted (band_no INTEGER, hash INTEGER, doc INTEGER)")
        cur = db.execute("SELECT rowid, CAST(id AS BLOB), CAST(text AS BLOB), CAST(meta AS BLOB), bands, "
                         "typeof(id) = 'text', typeof(text) = 'text', typeof(meta) = 'text' FROM docs")
        while True:
            rows = cur.fetchmany(1000)
            if not rows:
                break
            expected = []
            for rowid, raw_id, raw_text, raw_meta, blob, id_typed, text_typed, meta_typed in rows:
                scan.documents += 1
                doc_id = bytes(raw_id or b"").decode("utf-8", "replace")
                # (a damaged record header can also turn a text into a blob or a number)
                if not id_typed or _utf8(raw_id) is None:
                    scan.bad_id.append((rowid, doc_id))
                elif not text_typed or _utf8(raw_text) is None:
                    scan.bad_text.append((rowid, doc_id))
                meta_json = _utf8(raw_meta) if meta_typed else None
                try:
                    ok = meta_json is not None and isinstance(json.loads(meta_json), dict)
                except ValueError:
                    ok = False
                if not ok:
                    scan.bad_meta.append((rowid, doc_id))
                try:
                    keys = decode_bands(blob)
                except IndexDamaged:
                    scan.bad_bands.append((rowid, doc_id))
                    continue
                expected.extend((b, h, rowid) for b, h in keys)
            db.executemany("INSERT INTO temp.expected_unsorted VALUES (?, ?, ?)", expected)
        db.execute("INSERT OR IGNORE INTO temp.expected SELECT band_no, hash, doc FROM temp.expected_unsorted "
                   "ORDER BY band_no, hash, doc")
        db.execute("DROP TABLE temp.expected_unsorted")
        scan.missing_bands = db.execute(
            "SELECT COUNT(*) FROM temp.expected e WHERE NOT EXISTS (SELECT 1 FROM band b WHERE "
            "b.band_no=e.band_no AND b.hash=e.hash AND b.doc=e.doc)").fetchone()[0]
        bad_rowids = [r for r, _ in scan.bad_bands]
        orphan_sql = ("SELECT COUNT(*) FROM band b WHERE NOT EXISTS (SELECT 1 FROM temp.expected e WHERE "
                      "e.band_no=b.band_no AND e.hash=b.hash AND e.doc=b.doc)")
        if bad_rowids:  # the bands of a document whose key list is unreadable are not orphans
            orphan_sql += f" AND b.doc NOT IN ({','.join(map(str, bad_rowids))})"
        scan.orphan_bands = db.execute(orphan_sql).fetchone()[0]
        dups = [r[0] for r in db.execute("SELECT id FROM docs GROUP BY id HAVING COUNT(*) > 1 LIMIT 100")]
    except SQLITE_ERRORS as err:
        scan.sqlite_ok = False
        scan.problems.append(f"cannot read all documents and band rows ({err})")
        return scan
    for items, what in ((scan.bad_id, "id is not valid text (UTF-8)"),
                        (scan.bad_text, "text is not valid text (UTF-8)"),
                        (scan.bad_meta, "metadata is not a JSON object"),
                        (scan.bad_bands, "stored band keys are unreadable")):
        if items:
            scan.problems.append(f"{len(items):,} documents whose {what}: {_listed([i for _, i in items])}")
    if scan.missing_bands:
        scan.problems.append(f"{scan.missing_bands:,} band keys of documents missing from the band table "
                             f"(trace cannot find those documents by them)")
    if scan.orphan_bands:
        scan.problems.append(f"{scan.orphan_bands:,} band rows that belong to no document (orphans)")
    if dups:
        scan.problems.append(f"duplicate document ids: {_listed(dups)}")
    return scan


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE",
                      guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
                      ) -> Iterator[sqlite3.Connection]:
    """The one transaction helper: `begin`, the block, COMMIT; ROLLBACK on any error (a damaged
    file may refuse even that). `guard` wraps BEGIN and COMMIT (Index turns SQLite errors there
    into a message that says what to do).

    >>> db = sqlite3.connect(":memory:", isolation_level=None)
    >>> with write_transaction(db):
    ...     _ = db.execute("CREATE TABLE t (x)")
    >>> db.execute("SELECT name FROM sqlite_master").fetchone()
    ('t',)
    """
    with guard():
        db.execute(begin)
    try:
        yield db
        with guard():
            db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(*SQLITE_ERRORS):
            db.execute("ROLLBACK")
        raise


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _fingerprinter(channel: Channel | None) -> Fingerprinter:
    return Fingerprinter(channel if channel is not None else Channel.load_default())


def _repair_in_place(db: sqlite3.Connection, scan: _Scan, channel: Channel | None) -> list[str]:
    """Fix what unspin's own checks found, in one transaction; returns what was done."""
    done: list[str] = []
    fp: Fingerprinter | None = None
    with write_transaction(db):
        if scan.bad_id:
            _delete_bands_of(db, [r for r, _ in scan.bad_id])
            db.executemany("DELETE FROM docs WHERE rowid=?", [(r,) for r, _ in scan.bad_id])
            done.append(f"removed {len(scan.bad_id):,} documents whose id was unreadable (add them again): "
                        f"{_listed([i for _, i in scan.bad_id])}")
        if scan.bad_text:
            for rowid, _ in scan.bad_text:
                (raw,) = db.execute("SELECT CAST(text AS BLOB) FROM docs WHERE rowid=?", (rowid,)).fetchone()
                db.execute("UPDATE docs SET text=? WHERE rowid=?", (bytes(raw or b"").decode("utf-8", "replace"), rowid))
            done.append(f"replaced the damaged bytes in the text of {len(scan.bad_text):,} documents by U+FFFD "
                        f"(add them again for their exact text): {_listed([i for _, i in scan.bad_text])}")
        if scan.bad_meta:
            db.executemany("UPDATE docs SET meta='{}' WHERE rowid=?", [(r,) for r, _ in scan.bad_meta])
            done.append(f"cleared the unreadable metadata of {len(scan.bad_meta):,} documents")
        gone = {r for r, _ in scan.bad_id}
        refingerprint = sorted({r for r, _ in scan.bad_bands + scan.bad_text} - gone)
        if scan.kinds_differ:
            refingerprint = [r for (r,) in db.execute("SELECT rowid FROM docs")]
            db.execute("DELETE FROM band")
            db.execute("DELETE FROM temp.expected")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('kinds', ?)", (json.dumps(KINDS),))
        elif refingerprint:
            _delete_bands_of(db, refingerprint)
        if refingerprint:
            fp = _fingerprinter(channel)
            for rowid in refingerprint:
                (text,) = db.execute("SELECT text FROM docs WHERE rowid=?", (rowid,)).fetchone()
                keys, n_words = fp.band_keys(text)
                db.execute("UPDATE docs SET bands=?, n_words=? WHERE rowid=?",
                           (encode_keys(keys), n_words, rowid))
                db.executemany("INSERT OR IGNORE INTO band (band_no, hash, doc) VALUES (?, ?, ?)",
                               [(b, h, rowid) for b, h in keys])
            done.append(f"fingerprinted {len(refingerprint):,} documents again from their text"
                        + (" (this version's fingerprint settings)" if scan.kinds_differ else ""))
        if scan.orphan_bands and not scan.kinds_differ:
            sql = ("DELETE FROM band WHERE NOT EXISTS (SELECT 1 FROM temp.expected e WHERE e.band_no=band.band_no "
                   "AND e.hash=band.hash AND e.doc=band.doc)")
            if refingerprint:  # their new rows are not in `expected`
                sql += f" AND doc NOT IN ({','.join(map(str, refingerprint))})"
            n = db.execute(sql).rowcount
            done.append(f"dropped {n:,} orphan band rows")
        if scan.missing_bands and not scan.kinds_differ:
            sql = ("INSERT OR IGNORE INTO band (band_no, hash, doc) SELECT e.band_no, e.hash, e.doc FROM "
                   "temp.expected e WHERE e.doc IN (SELECT rowid FROM docs)")
            if refingerprint:  # their stored keys were of the text before the repair
                sql += f" AND e.doc NOT IN ({','.join(map(str, refingerprint))})"
            n = db.execute(sql).rowcount
            done.append(f"restored {n:,} missing band rows from the documents' stored keys")
        if scan.bulk_pending:  # its key rows were restored above (missing band rows) or fingerprinted again
            db.execute("DELETE FROM meta WHERE key=?", (BULK_MARK,))
            done.append("finished the interrupted bulk load")
        if scan.meta_fix:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            done.append(f"set schema_version to {SCHEMA_VERSION}")
    return done


def _delete_bands_of(db: sqlite3.Connection, rowids: Sequence[int]) -> None:
    """Delete the band rows of these documents (one scan of the band table per 500 of them)."""
    for i in range(0, len(rowids), 500):
        chunk = rowids[i:i + 500]
        db.execute(f"DELETE FROM band WHERE doc IN ({','.join('?' * len(chunk))})", chunk)


MAX_FAILED_READS = 2000  # probes of damaged rowids before a salvage gives up on the rest


def _readable_rows(db: sqlite3.Connection, log: list[str]) -> Iterator[tuple]:
    """The docs rows SQLite can still read, in rowid order, stepping over damaged pages."""
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='docs'").fetchone() is None:
            return
    except SQLITE_ERRORS:
        return
    try:
        last = db.execute("SELECT MAX(rowid) FROM docs").fetchone()[0] or 0
    except SQLITE_ERRORS:
        last = None
    if last is None:
        try:
            last = db.execute("SELECT MAX(doc) FROM band").fetchone()[0] or 0
        except SQLITE_ERRORS:
            last = 1 << 40
    cursor, skipped, failed = 0, 0, 0
    cols = ("rowid, CAST(id AS BLOB), CAST(text AS BLOB), CAST(meta AS BLOB), n_words, bands, added, "
            "typeof(id) = 'text'")
    while cursor < last and failed < MAX_FAILED_READS:
        try:
            rows = db.execute(f"SELECT {cols} FROM docs WHERE rowid > ? ORDER BY rowid LIMIT 200",
                              (cursor,)).fetchall()
        except SQLITE_ERRORS:
            rows = None
        if rows is None:  # one at a time, then jump over what cannot be read
            step = 1
            while cursor < last and failed < MAX_FAILED_READS:
                try:
                    rows = db.execute(f"SELECT {cols} FROM docs WHERE rowid = ?", (cursor + 1,)).fetchall()
                    break
                except SQLITE_ERRORS:
                    failed += 1
                    cursor += step
                    skipped += step
                    step = min(step * 2, 1 << 16)
            if rows is None:
                break
            if not rows:
                cursor += 1
                continue
        if not rows:
            break
        yield from rows
        cursor = rows[-1][0]
    if failed >= MAX_FAILED_READS:
        log.append(f"stepped over unreadable rows, then gave up on the rows after rowid {cursor:,}")
    elif skipped:
        log.append(f"stepped over unreadable rows (rowids {skipped:,} at most)")


def _salvage(path: str, channel: Channel | None) -> tuple[list[str], str | None, list[str] | None]:
    """Copy what can be read of a damaged index into a new file that replaces it (the damaged one is
    kept as PATH.damaged). Returns (what was done, why it failed or None, the ids lost or None when
    the list of ids was unreadable too)."""
    done: list[str] = []
    src = _connect(path)
    try:
        try:
            known_ids = {r[0] for r in src.execute("SELECT id FROM docs INDEXED BY sqlite_autoindex_docs_1")
                         if isinstance(r[0], str)}  # a damaged id index can hold anything
        except SQLITE_ERRORS:
            known_ids = None
        tmp = path + ".repair"
        _remove_index_files(tmp)
        dst = _connect(tmp)
        fp: Fingerprinter | None = None
        n_saved = n_refp = 0
        saved_ids: set[str] = set()
        try:
            dst.executescript(_SCHEMA)
            dst.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            dst.execute("INSERT INTO meta VALUES ('kinds', ?)", (json.dumps(KINDS),))
            with write_transaction(dst, begin="BEGIN"):
                for rowid, raw_id, raw_text, raw_meta, n_words, blob, added, id_typed in _readable_rows(src, done):
                    doc_id = _utf8(raw_id) if id_typed else None
                    if doc_id is None or raw_text is None or doc_id in saved_ids:
                        continue
                    text = bytes(raw_text).decode("utf-8", "replace")  # damaged bytes: U+FFFD, fingerprinted again
                    if _utf8(raw_text) is None:
                        blob = None
                    meta_json = _utf8(raw_meta) or "{}"
                    try:
                        if not isinstance(json.loads(meta_json), dict):
                            meta_json = "{}"
                    except ValueError:
                        meta_json = "{}"
                    try:
                        keys = decode_bands(blob)
                    except IndexDamaged:
                        fp = fp or _fingerprinter(channel)
                        keys, n_words = fp.band_keys(text)
                        blob = encode_keys(keys)
                        n_refp += 1
                    dst.execute("INSERT INTO docs (rowid, id, text, meta, n_words, bands, added) VALUES (?, ?, ?, ?, ?, "
                                "?, ?)", (rowid, doc_id, text, meta_json, n_words if isinstance(n_words, int) else 0,
                                          blob, added if isinstance(added, (int, float)) else time.time()))
                    dst.executemany("INSERT OR IGNORE INTO band (band_no, hash, doc) VALUES (?, ?, ?)",
                                    [(b, h, rowid) for b, h in keys])
                    saved_ids.add(doc_id)
                    n_saved += 1
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    finally:
        src.close()
    if n_saved == 0:
        _remove_index_files(tmp)
        return done, "no document could be read", None
    kept = path + ".damaged"
    if os.path.exists(kept):
        kept = f"{path}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, kept + suffix)
    os.replace(tmp, path)
    done.append(f"copied the {n_saved:,} readable documents into a new file (the damaged one is kept as "
                f"{kept})")
    if n_refp:
        done.append(f"fingerprinted {n_refp:,} documents again from their text")
    lost = None if known_ids is None else sorted(known_ids - saved_ids)
    if lost:
        done.append(f"lost {len(lost):,} documents (add them again): {_listed(lost)}")
    elif lost is None:
        done.append("the list of all ids was unreadable: documents on damaged pages may be lost (compare "
                    "`unspin index stats` with your inputs)")
    return done, None, lost


def check_index(path: str | os.PathLike, repair: bool = False, channel: Channel | None = None) -> dict:
    """Verify an index file: SQLite's `PRAGMA integrity_check`, then unspin's own consistency
    checks (the meta settings are this version's; every document's stored band keys are in the
    band table; no band row without its document; ids, texts and metadata decodable).

    Returns {"ok", "problems", "documents", "path"}. With repair=True what can be rebuilt is:
    REINDEX for damaged SQLite indexes; orphan band rows dropped; missing band rows restored from
    the documents' stored keys (or fingerprinted again from their text); and when SQLite pages are
    damaged, the readable documents copied into a new file (the old one kept as PATH.damaged).
    The result then also has "found" (the problems before) and "repaired" (what was done), and
    "problems" lists what remains; after a copy, "lost_ids" lists (up to 1,000 of) the ids of the
    documents that could not be read (None when even the ids were unreadable); a file beyond
    repair says so. Run it while no other process uses the index. `channel` (default: the shipped one) is needed only to fingerprint again.

    >>> check_index("refs.sqlite")                                    # doctest: +SKIP
    {'path': 'refs.sqlite', 'ok': True, 'problems': [], 'documents': 1}
    """
    path = check_path_argument(path, "check_index")
    if not isinstance(repair, bool):
        raise TypeError(f"check_index: repair must be True or False, got {type(repair).__name__}")
    report: dict = {"path": path, "ok": False, "problems": [], "documents": 0}
    why = _file_problem(path)
    if why is not None:
        if not Path(path).exists() or Path(path).is_dir():
            raise InputError(why)
        report["problems"] = [why]
        if repair:
            report.update(found=[why], repaired=[], problems=[why, _BEYOND])
        return report
    db = _connect(path)
    try:
        scan = _scan(db)
        report.update(ok=not scan.problems, problems=scan.problems, documents=scan.documents)
        if scan.empty:
            report["note"] = "the file holds no index yet (nothing was ever written); `unspin index add` fills it"
        if not repair:
            return report
        report["found"] = list(scan.problems)
        done: list[str] = []
        report["repaired"] = done
        if not scan.problems:
            return report
        if scan.fatal and scan.sqlite_ok and "not an unspin index" in scan.fatal:
            report["problems"] = scan.problems + ["not repaired: this file is not an unspin index"]
            return report
        if not scan.sqlite_ok:
            try:
                db.execute("REINDEX")
                done.append("rebuilt SQLite's indexes (REINDEX)")
            except SQLITE_ERRORS:
                pass
            scan = _scan(db)
        if scan.sqlite_ok and not scan.fatal:
            done += _repair_in_place(db, scan, channel)
    finally:
        db.close()
    if not scan.sqlite_ok or scan.fatal:
        try:
            salvaged, failure, lost = _salvage(path, channel)
        except (OSError, *SQLITE_ERRORS) as err:
            salvaged, failure, lost = [], f"the copy failed: {err}", None
        done += salvaged
        report["lost_ids"] = lost[:1000] if lost is not None else None
        if failure:
            report.update(ok=False, problems=scan.problems + [f"{_BEYOND} ({failure})"])
            return report
    db = _connect(path)
    try:
        scan = _scan(db)
        if scan.problems and scan.sqlite_ok and not scan.fatal:  # e.g. bands of the salvaged copy
            done += _repair_in_place(db, scan, channel)
            scan = _scan(db)
    finally:
        db.close()
    report.update(ok=not scan.problems, problems=scan.problems, documents=scan.documents)
    return report


_BEYOND = ("beyond repair: build the index again from the documents (`unspin index add --index PATH "
           "INPUT...` into a new file)")
