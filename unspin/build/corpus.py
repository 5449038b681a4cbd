"""The English corpora in ../shared/data/corpora and their train / held-out split.

Held-out text is never used to train the language model or any other model:
benchmarks read only `split="heldout"`. The split is fixed here so that every
tool agrees on it:
  * enwiki_minisearch/enwiki_AG.txt.gz is held out whole;
  * the last 10% of lines of wikinews_en (news style, closest to what is spun)
    is held out, and the 10% before it is the "calib" split, on which the
    spin-probability and confidence calibration is fitted (never the LM);
  * gum/gum_docs.jsonl (whole documents with boundaries) is held out.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

HELDOUT_FILES = {"enwiki_minisearch/enwiki_AG.txt.gz"}
WIKINEWS_FILE = "wikinews_en/enwikinews.txt.gz"
WIKINEWS_HELDOUT_FRACTION = 0.10
WIKINEWS_CALIB_FRACTION = 0.10
GUM_FILE = "gum/gum_docs.jsonl"


def default_data_dir() -> Path:
    """The data folder: $UNSPIN_DATA, else shared/data beside the checkout (../shared/data) or in it.
    Every build module finds the data through this function."""
    env = os.environ.get("UNSPIN_DATA")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]  # the folder holding the unspin package
    for candidate in (checkout.parent / "shared" / "data", checkout / "shared" / "data"):
        if candidate.exists():
            return candidate
    return checkout.parent / "shared" / "data"


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """The `--progress/--no-progress` option of the build and benchmark commands."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show progress on stderr (default: only when stderr is a terminal)")


def progress_enabled(flag: bool | None) -> bool:
    """The value of `--progress/--no-progress`; when neither is given, whether stderr is a terminal."""
    return flag if flag is not None else sys.stderr.isatty()


def stderr_log(name: str) -> Callable[[str], None]:
    """A progress callback for a command: writes "[name   12.3s] message" lines to stderr
    (through tqdm, so that a progress bar on screen is not broken)."""
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        tqdm.write(f"[{name} {time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr)

    return log


def cache_dir() -> Path:
    """Where derived, rebuildable files go (spinner term sets, benchmark channels): $UNSPIN_CACHE
    or ~/.cache/unspin."""
    return Path(os.environ.get("UNSPIN_CACHE", Path.home() / ".cache" / "unspin"))


def _corpus_files(data_dir: Path) -> list[str]:
    root = data_dir / "corpora"
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.txt.gz"))


def _count_lines(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f)


def iter_paragraphs(split: str = "train", data_dir: str | os.PathLike | None = None,
                    files: list[str] | None = None) -> Iterator[str]:
    """Paragraphs (one corpus line each) of the given split: "train", "calib" or "heldout"."""
    if split not in ("train", "calib", "heldout"):
        raise ValueError(f"unknown split {split!r}")
    root = Path(data_dir or default_data_dir()) / "corpora"
    for rel in files or _corpus_files(root.parent):
        path = root / rel
        if rel == WIKINEWS_FILE:
            total = _count_lines(path)
            held = int(total * (1 - WIKINEWS_HELDOUT_FRACTION))
            calib = int(total * (1 - WIKINEWS_HELDOUT_FRACTION - WIKINEWS_CALIB_FRACTION))
            lo, hi = {"train": (0, calib), "calib": (calib, held), "heldout": (held, total)}[split]
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                for i, line in enumerate(f):
                    if lo <= i < hi and line.strip():
                        yield line.rstrip("\n")
            continue
        if split == "calib" or (rel in HELDOUT_FILES) != (split == "heldout"):
            continue
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip("\n")


def iter_gum_documents(data_dir: str | os.PathLike | None = None) -> Iterator[dict]:
    """Whole held-out documents with boundaries: {"id", "genre", "text", ...}."""
    path = Path(data_dir or default_data_dir()) / "corpora" / GUM_FILE
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def iter_articles(split: str = "heldout", min_words: int = 300, max_words: int = 800,
                  data_dir: str | os.PathLike | None = None, files: list[str] | None = None) -> Iterator[str]:
    """Article-sized texts made of consecutive paragraphs (the corpora have no document boundaries)."""
    buf: list[str] = []
    n = 0
    for para in iter_paragraphs(split, data_dir, files):
        words = len(para.split())
        if n + words > max_words and n >= min_words:
            yield "\n".join(buf)
            buf, n = [], 0
        if words > max_words:
            continue
        buf.append(para)
        n += words
    if n >= min_words:
        yield "\n".join(buf)
