"""Build the name gazetteer (`unspin/models/names.npz`) from the training corpora.

A name is a run of 2-4 capitalized words ("Harbor Bank", "Silver Lake Council"); every
sub-run of a longer capitalized run counts too. Runs seen at least `min_count` times are
kept. A proper noun is a word written capitalized inside sentences at least 95% of the time
(and seen so at least 5 x `min_count` times). Only the "train" split is read (never calib or
held-out text).

    unspin build-names [--max-words 40000000] [--min-count 3] [--out unspin/models/names.npz]
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from typing import Iterable

import numpy as np

from ..names import DEFAULT_NAMES_PATH, MAX_NAME_WORDS, NameGazetteer, name_hash
from .corpus import add_progress_option, iter_paragraphs, progress_enabled, stderr_log

# Wikinews first (news names), then the Wikipedia slices, as far as --max-words reaches.
NAME_FILES = ["wikinews_en/enwikinews.txt.gz", "enwiki_wikitasks/enwiki_2021_AA.txt.gz",
              "enwiki_minisearch/enwiki_AF.txt.gz", "enwiki_wikivisual/enwiki_AA.txt.gz",
              "enwiki_wikivisual/enwiki_AB.txt.gz"]
# A capitalized word: an uppercase letter then letters, digits, apostrophes, dots or hyphens.
CAPITALIZED = re.compile(r"[A-Z][\w'’.\-]*")
WORD = re.compile(r"\S+")


def capitalized_runs(paragraph: str) -> Iterable[list[str]]:
    """Runs of consecutive capitalized words (lowercased, edge punctuation stripped; a run ends at
    a word that carries punctuation after it, such as a comma or a full stop)."""
    run: list[str] = []
    for m in WORD.finditer(paragraph):
        raw = m.group()
        word = raw.strip("\"'“”‘’()[]")
        ends = word[-1:] in ",.;:!?" if word else True
        word = word.rstrip(",.;:!?")
        if word and CAPITALIZED.fullmatch(word):
            run.append(word.lower())
            if ends or raw.endswith(("\"", "”", "’", ")")):
                if len(run) >= 2:
                    yield run
                run = []
            continue
        if len(run) >= 2:
            yield run
        run = []
    if len(run) >= 2:
        yield run


def count_names(paragraphs: Iterable[str], max_words: int, progress=None,
                case_counts: Counter | None = None) -> Counter:
    """Hash -> count of every 2-4-word sub-run of the capitalized runs, over at most `max_words`.
    With `case_counts`, also count each word inside a sentence as (word, capitalized?)."""
    counts: Counter = Counter()
    seen = 0
    for k, para in enumerate(paragraphs):
        seen += para.count(" ") + 1
        for run in capitalized_runs(para):
            for a in range(len(run)):
                for b in range(a + 2, min(len(run), a + MAX_NAME_WORDS) + 1):
                    counts[name_hash(" ".join(run[a:b]))] += 1
        if case_counts is not None:
            count_case(para, case_counts)
        if progress is not None and k % 200_000 == 0:
            progress(f"{seen:,} words, {len(counts):,} distinct runs")
        if seen >= max_words:
            break
    return counts


def count_case(paragraph: str, case_counts: Counter) -> None:
    """Count (word, capitalized?) for the plain words of a paragraph that do not start a sentence."""
    sentence_start = True
    for m in WORD.finditer(paragraph):
        raw = m.group()
        word = raw.strip("\"'“”‘’()[],.;:!?")
        if word.isalpha() and not sentence_start:
            case_counts[(word.lower(), word[0].isupper())] += 1
        sentence_start = raw.endswith((".", "!", "?", ".\"", ".”", ":"))


def proper_nouns(case_counts: Counter, min_count: int, min_capitalized: float) -> list[str]:
    """Words written capitalized inside sentences at least `min_capitalized` of the time."""
    out = []
    for (word, capitalized), n in case_counts.items():
        if capitalized and n >= min_count:
            low = case_counts.get((word, False), 0)
            if n / (n + low) >= min_capitalized:
                out.append(word)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin build-names`."""
    ap.add_argument("--max-words", type=int, default=40_000_000, help="corpus words to read (default 40M)")
    ap.add_argument("--min-count", type=int, default=3, help="keep runs seen at least this often (default 3)")
    ap.add_argument("--out", default=str(DEFAULT_NAMES_PATH), help="where to write the gazetteer (.npz)")
    add_progress_option(ap)


def run(args: argparse.Namespace) -> int:
    """`unspin build-names`: count capitalized runs in the training corpora and write the gazetteer."""
    log = stderr_log("build-names") if progress_enabled(args.progress) else None
    case_counts: Counter = Counter()
    counts = count_names(iter_paragraphs("train", files=NAME_FILES), args.max_words, log, case_counts)
    kept = np.array([h for h, c in counts.items() if c >= args.min_count], dtype=np.int64)
    proper = proper_nouns(case_counts, min_count=5 * args.min_count, min_capitalized=0.95)
    NameGazetteer(kept, np.array([name_hash(w) for w in proper], dtype=np.int64)).save(args.out)
    print(f"wrote {args.out}: {len(kept):,} names (of {len(counts):,} distinct capitalized runs), "
          f"{len(proper):,} proper nouns", file=sys.stderr)
    return 0
