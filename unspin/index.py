"""A persistent, incremental index of reference documents for `trace` (one SQLite file).

Each document is stored with its text, its metadata (JSON) and two MinHash
fingerprints that survive synonym spinning:

* "imm": word 4-grams over the document's *immutable* tokens only (function words,
  numbers, capitalized names), which a spinner leaves alone;
* "syn": word 3-grams over *synonym-class* tokens: each word mapped through the channel
  to the smallest of itself and its top candidates, so `said` and `stated` often agree.

Candidates come from LSH banding stored in the table band(band_no, hash, doc) with an
index, so a query is a few dozen indexed lookups. Documents are written in batches of
500 per transaction: a kill mid-add loses at most the current batch, and an id is a
PRIMARY KEY whose bands are replaced in the same transaction, so nothing is duplicated.

    python -m unspin.index add --index refs.sqlite docs.jsonl folder/
    python -m unspin.index stats --index refs.sqlite
    python -m unspin.index remove --index refs.sqlite ID...
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .inputs import InputError, html_to_text, looks_like_html, read_document, run_command
from .text import FUNCTION_WORDS, tokenize

# (kind, shingle size, permutations, rows per band). Immutable-token 3-grams keep a
# Jaccard of ~0.5 under 40-60% spinning (~0.2 at worst: spinners touch names and
# particles too) and ~0 between unrelated texts: 63 bands of 2 rows. Synonym-class
# 3-grams keep less (~0.2): 32 bands of 2 rows.
KINDS = (("imm", 3, 126, 2), ("syn", 3, 64, 2))
NUM_PERM = sum(k[2] for k in KINDS)
BATCH = 500
SCHEMA_VERSION = 1

CANON_TOP = 4

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


# ---- fingerprints -----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _channel():
    from .lexicon import Channel

    return Channel.load_default()


_CANON: dict[str, str] = {}


@functools.lru_cache(maxsize=200_000)
def _top_candidates(word: str) -> tuple[str, ...]:
    out = []
    for w, sources in _channel().originals((word,)):
        if " " in w or sources == _SPELLING_ONLY:
            continue
        out.append(w)
        if len(out) >= CANON_TOP:
            break
    return tuple(out)


_SPELLING_ONLY = frozenset({"spelling"})


def canonical(word: str) -> str:
    """A synonym-class representative: the smallest word within two hops of `word` through
    the channel's top single-word candidates (so a word and its spun synonym often agree)."""
    got = _CANON.get(word)
    if got is None:
        near = _top_candidates(word)
        _CANON[word] = got = min([word, *near, *(w for c in near for w in _top_candidates(c))])
    return got


def words_of(text: str) -> list[tuple[str, str]]:
    """(surface, norm) of the word and number tokens of a text."""
    return [(t.text, t.norm) for t in tokenize(text) if t.kind in ("word", "number")]


def immutable_seq(words: list[tuple[str, str]]) -> list[str]:
    out = []
    for i, (surf, norm) in enumerate(words):
        if norm in FUNCTION_WORDS or surf[:1].isdigit():
            out.append(norm)
        elif surf[:1].isupper() and i > 0:
            out.append(norm)  # a capitalized word inside a sentence: a name
    return out


def synonym_seq(words: list[tuple[str, str]]) -> list[str]:
    return [norm if (norm in FUNCTION_WORDS or surf[:1].isdigit()) else canonical(norm) for surf, norm in words]


def _shingles(seq: list[str], n: int) -> list[bytes]:
    if not seq:
        return []
    if len(seq) < n:
        return [" ".join(seq).encode()]
    return [" ".join(seq[i:i + n]).encode() for i in range(len(seq) - n + 1)]


def minhash(shingles: list[bytes], num_perm: int = 64) -> np.ndarray | None:
    """The datasketch MinHash signature (seed=1) of a shingle set."""
    if not shingles:
        return None
    from datasketch import MinHash

    base = _base(num_perm)
    m = MinHash(num_perm=num_perm, seed=1, permutations=base.permutations, scheme=base.scheme)
    m.update_batch(set(shingles))
    return m.hashvalues


@functools.lru_cache(maxsize=4)
def _base(num_perm: int):
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=1, scheme="affine32")  # pinned: the index stores its bands


def band_hashes(sig: np.ndarray, kind_no: int, rows: int) -> list[tuple[int, int]]:
    """(band_no, 63-bit hash) per band of a signature."""
    out = []
    for b in range(len(sig) // rows):
        digest = hashlib.blake2b(sig[b * rows:(b + 1) * rows].tobytes(), digest_size=8).digest()
        out.append((kind_no * 1000 + b, int.from_bytes(digest, "little") >> 1))
    return out


def fingerprint(text: str) -> tuple[list[tuple[int, int]], int]:
    """All band keys of a text (both kinds) and its word count."""
    words = words_of(text)
    keys: list[tuple[int, int]] = []
    for kind_no, (kind, n, perms, rows) in enumerate(KINDS):
        seq = immutable_seq(words) if kind == "imm" else synonym_seq(words)
        sig = minhash(_shingles(seq, n), perms)
        if sig is not None:
            keys.extend(band_hashes(sig, kind_no, rows))
    return keys, len(words)


# ---- the index --------------------------------------------------------------------------
class Index:
    """A reference-document index in one SQLite file (created if missing, unless create=False)."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = str(path)
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
    def add(self, docs: Iterable[dict], progress: bool = True) -> int:
        """Add (or replace, by id) documents; returns how many were written.

        Rows with empty text are skipped (their number is in `last_skipped` and reported on
        stderr). Within one call a repeated id is written twice, so the last one wins.
        """
        written = skipped = 0
        batch: list[tuple] = []
        t0 = time.time()
        for doc in docs:
            if not isinstance(doc, dict) or "id" not in doc:
                raise InputError("each document needs an 'id' and a 'text'")
            text = doc.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped += 1
                continue
            keys, n_words = fingerprint(text)
            meta = {k: v for k, v in doc.items() if k not in ("id", "text")}
            batch.append((str(doc["id"]), text, json.dumps(meta, ensure_ascii=False), n_words, keys))
            if len(batch) >= BATCH:
                written += self._write(batch)
                batch = []
                if progress:
                    rate = written / max(time.time() - t0, 1e-9)
                    print(f"\rindexed {written:,} documents ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
        if batch:
            written += self._write(batch)
        if progress:
            print(f"\rindexed {written:,} documents", file=sys.stderr)
        if skipped and progress:
            print(f"warning: skipped {skipped:,} rows with empty text", file=sys.stderr)
        self.last_skipped = skipped
        return written

    def _write(self, batch: list[tuple]) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for doc_id, text, meta, n_words, keys in batch:
                self._delete(doc_id)
                blob = np.array(keys, dtype=np.int64).tobytes()
                cur = db.execute("INSERT INTO docs (id, text, meta, n_words, bands, added) VALUES (?, ?, ?, ?, ?, ?)",
                                 (doc_id, text, meta, n_words, blob, time.time()))
                rowid = cur.lastrowid
                db.executemany("INSERT INTO band (band_no, hash, doc) VALUES (?, ?, ?)",
                               [(b, h, rowid) for b, h in keys])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
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
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            n = sum(self._delete(str(i)) for i in ids)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n

    # -- reading
    def get(self, doc_id: str) -> dict | None:
        """{"id", "text", ...metadata} or None."""
        row = self._db.execute("SELECT id, text, meta FROM docs WHERE id=?", (str(doc_id),)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "text": row[1], **json.loads(row[2])}

    def _get_by_rowid(self, rowid: int) -> tuple[str, str] | None:
        return self._db.execute("SELECT id, text FROM docs WHERE rowid=?", (rowid,)).fetchone()

    def stats(self) -> dict:
        n_docs, n_words = self._db.execute("SELECT COUNT(*), COALESCE(SUM(n_words), 0) FROM docs").fetchone()
        n_bands = self._db.execute("SELECT COUNT(*) FROM band").fetchone()[0]
        size = sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))
        return {"path": self.path, "documents": n_docs, "words": n_words, "band_rows": n_bands,
                "size_bytes": size, "num_perm": NUM_PERM, "kinds": [k[0] for k in KINDS]}

    def candidates(self, text: str, limit: int = 30, max_bucket: int = 2000) -> list[tuple[int, int]]:
        """(rowid, band hits) of the documents sharing LSH buckets with `text`, most hits first."""
        keys, _ = fingerprint(text)
        hits: dict[int, int] = {}
        for b, h in keys:
            rows = self._db.execute("SELECT doc FROM band WHERE band_no=? AND hash=? LIMIT ?",
                                    (b, h, max_bucket + 1)).fetchall()
            if len(rows) > max_bucket:
                continue  # a bucket this common says nothing
            for (d,) in rows:
                hits[d] = hits.get(d, 0) + 1
        return sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def trace(self, text: str, top: int = 5):
        from .trace import trace

        return trace(self, text, top=top)


# ---- reading inputs ---------------------------------------------------------------------
def iter_input_docs(path: str) -> Iterator[dict]:
    """Documents from JSONL rows, a folder of .txt/.html files, one text file, or Parquet."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".txt", ".html", ".htm", ".md"))
        for f in files:
            yield {"id": str(f.relative_to(p)), "text": read_document(str(f))}
        return
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    suffix = "".join(p.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(p)
    elif suffix in (".txt", ".md", ".html", ".htm"):
        yield {"id": p.name, "text": read_document(str(p))}
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), "
                             f"or convert it to JSONL rows {{\"id\", \"text\"}}") from None
        try:
            parquet = pq.ParquetFile(p)
        except Exception as err:  # pyarrow raises its own error types for files that are not Parquet
            raise InputError(f"{path}: not a readable Parquet file ({err})") from None
        if not {"id", "text"} <= set(parquet.schema_arrow.names):
            raise InputError(f"{path}: Parquet input needs 'id' and 'text' columns, "
                             f"found {', '.join(parquet.schema_arrow.names)}")
        for batch in parquet.iter_batches(batch_size=1000):  # stream: a corpus need not fit in memory
            for row in batch.to_pylist():
                row["id"] = str(row["id"])
                yield row
    else:
        raise InputError(f"{path}: unknown input format; give JSONL rows {{\"id\", \"text\"}} (.jsonl), "
                         f"a folder of .txt/.html files, or .parquet")


def _iter_jsonl(p: Path) -> Iterator[dict]:
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise InputError(f"{p}:{line_no}: row is not valid JSON ({err})") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise InputError(f"{p}:{line_no}: row needs an 'id' and a 'text'")
            text = obj.get("text")
            if text is not None and not isinstance(text, str):
                raise InputError(f"{p}:{line_no}: 'text' is not a string")
            if text and looks_like_html(text):
                obj["text"] = html_to_text(text)
            yield obj


# ---- command line -----------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unspin index", description="Build and maintain a trace index.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add", help="add or replace documents")
    p.add_argument("--index", required=True, help="the SQLite index file (created if missing)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL rows {id, text, ...}, a folder of "
                   ".txt/.html files (id = relative path), or .parquet")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p = sub.add_parser("stats", help="documents, words, size")
    p.add_argument("--index", required=True)
    p = sub.add_parser("remove", help="remove documents by id")
    p.add_argument("--index", required=True)
    p.add_argument("ids", nargs="+", metavar="ID")
    args = parser.parse_args(argv)
    return run_command("unspin index", lambda: _run(args), (InputError, sqlite3.DatabaseError))


def _run(args) -> int:
    if args.command == "add":
        for inp in args.inputs:  # fail early on a missing or unknown input
            if not Path(inp).is_dir() and not Path(inp).exists():
                raise InputError(f"{inp}: no such file or folder")
        with Index(args.index) as idx:
            total = skipped = 0
            for inp in args.inputs:
                total += idx.add(iter_input_docs(inp), progress=not args.quiet)
                skipped += idx.last_skipped
            print(json.dumps({"added": total, "skipped_empty": skipped, "documents": len(idx)}))
    elif args.command == "stats":
        with Index(args.index, create=False) as idx:
            print(json.dumps(idx.stats()))
    else:
        with Index(args.index, create=False) as idx:
            n = idx.remove(args.ids)
            print(json.dumps({"removed": n, "documents": len(idx)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
