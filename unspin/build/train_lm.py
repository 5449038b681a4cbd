"""Train the n-gram language model that ships in the package (KenLM).

Pipeline (reproducible: the same corpora and options give the same model):

  corpus.iter_paragraphs("train")  ->  text.lm_sentences  ->  lmplz  ->  ARPA
  ARPA  ->  build_binary trie (quantized)  ->  out_path

Only the fixed train split (see unspin/build/corpus.py) is read; held-out text never is.
Tokenization runs in a pool of worker processes (it is the slow part) and is
streamed into `lmplz` through a pipe. With `vocab_size`, the tokenized text is
spooled to a temporary file first, so that word counts can pick the vocabulary
(`lmplz --limit_vocab_file`) before the n-gram counts are made.

The KenLM tools are not on PyPI as binaries; build them from the kenlm sdist:

    pip download --no-binary :all: --no-deps --no-build-isolation kenlm==0.3.0 -d /tmp/kenlm-sdist
    tar xzf /tmp/kenlm-sdist/kenlm-0.3.0.tar.gz -C /work && mv /work/kenlm-0.3.0 /work/kenlm-src
    mkdir -p /work/kenlm-build && cd /work/kenlm-build
    cmake -DCMAKE_BUILD_TYPE=Release /work/kenlm-src && make -j2 lmplz build_binary
    export KENLM_BIN=/work/kenlm-build/bin

`write_arpa` is a small pure-Python ARPA writer (interpolated absolute
discounting) for tests and tiny models; it needs no KenLM tools.
"""
from __future__ import annotations

import argparse
import collections
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from .. import text
from ..lm import DEFAULT_LM_PATH
from . import corpus
from .corpus import add_progress_option, progress_enabled, stderr_log

logger = logging.getLogger(__name__)

DEFAULT_ORDER = 4
DEFAULT_PRUNE = (0, 0, 1, 1)
DEFAULT_BUILD_ARGS = ("-q", "8", "-b", "8", "-a", "22")

# The configuration of the shipped unspin/models/lm.binary (see MODEL_CARD.md); the CLI defaults to it.
SHIPPED_ORDER = 4
SHIPPED_PRUNE = (0, 2, 3, 4)
SHIPPED_VOCAB_SIZE = 200_000

BUILD_HELP = """\
KenLM tools `{tool}` not found (looked in: {where}).
Build them from source (outside the repository) and point KENLM_BIN at them:
    pip download --no-binary :all: --no-deps --no-build-isolation kenlm==0.3.0 -d /tmp/kenlm-sdist
    tar xzf /tmp/kenlm-sdist/kenlm-0.3.0.tar.gz -C /tmp && mv /tmp/kenlm-0.3.0 /work/kenlm-src
    mkdir -p /work/kenlm-build && cd /work/kenlm-build
    cmake -DCMAKE_BUILD_TYPE=Release /work/kenlm-src && make -j2 lmplz build_binary
    export KENLM_BIN=/work/kenlm-build/bin
(needs cmake, a C++ compiler, Boost (program_options, system, thread), zlib)."""


class KenLMToolsMissing(RuntimeError):
    pass


# --------------------------------------------------------------------------- tools

def find_kenlm_tool(name: str, kenlm_bin: str | os.PathLike | None = None) -> Path:
    """Path of `lmplz` / `build_binary`: from `kenlm_bin`, $KENLM_BIN, or PATH."""
    where = []
    for d in (kenlm_bin, os.environ.get("KENLM_BIN")):
        if d:
            where.append(str(d))
            cand = Path(d) / name
            if cand.is_file() and os.access(cand, os.X_OK):
                return cand
    where.append("PATH")
    found = shutil.which(name)
    if found:
        return Path(found)
    raise KenLMToolsMissing(BUILD_HELP.format(tool=name, where=", ".join(where)))


# --------------------------------------------------------------------------- text

# The tokenizer's pattern without named groups, so that `findall` returns the token strings:
# the same tokens as text.tokenize, without building Token objects (2x faster over ~100M words).
_TOKEN_STR_RE = re.compile(re.sub(r"\(\?P<\w+>", "(?:", text.TOKEN_RE.pattern), text.TOKEN_RE.flags)


def fast_lm_sentences(paragraph: str) -> Iterator[str]:
    """Exactly text.lm_sentences(paragraph) (checked by the tests), faster."""
    paragraph = text.repair_rewriter_marks(paragraph)
    for start, end in text.sentence_spans(paragraph):
        joined = " ".join(_TOKEN_STR_RE.findall(paragraph, start, end))
        if joined:
            yield text.normalize_token(joined)


def _sentences_of_chunk(paragraphs: list[str]) -> list[str]:
    out = []
    for para in paragraphs:
        out.extend(fast_lm_sentences(para))
    return out


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    buf: list[str] = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def iter_training_sentences(data_dir: str | os.PathLike | None = None, workers: int | None = None,
                            files: list[str] | None = None) -> Iterator[str]:
    """LM-format sentences of the train split, in corpus order (tokenized in parallel)."""
    paragraphs = corpus.iter_paragraphs("train", data_dir=data_dir, files=files)
    workers = workers or os.cpu_count() or 1
    if workers <= 1:
        for para in paragraphs:
            yield from fast_lm_sentences(para)
        return
    with Pool(workers) as pool:
        # imap keeps the order, so the output is the same whatever the number of workers.
        for sents in pool.imap(_sentences_of_chunk, _chunks(paragraphs, 2000), chunksize=1):
            yield from sents


def _clean(sentence: str) -> str:
    # lmplz rejects the special symbols inside the text; the tokenizer splits "<s>" into
    # "< s >" already, so this is only a guard for text_file input.
    return sentence.replace("<s>", "< s >").replace("</s>", "< / s >").replace("<unk>", "< unk >")


# --------------------------------------------------------------------------- training

def train_lm(out_path: str | os.PathLike, data_dir: str | os.PathLike | None = None, order: int = DEFAULT_ORDER,
             prune: Sequence[int] = DEFAULT_PRUNE, vocab_size: int | None = None, memory: str = "8G",
             kenlm_bin: str | os.PathLike | None = None, log: Callable[[str], None] | None = None, *,
             build_args: Sequence[str] = DEFAULT_BUILD_ARGS, text_file: str | os.PathLike | None = None,
             save_text: str | os.PathLike | None = None, keep_arpa: str | os.PathLike | None = None,
             workers: int | None = None, tmp_dir: str | os.PathLike | None = None,
             discount_fallback: bool = True, tool_output: bool = False) -> Path:
    """Train a KenLM model on the train split and write a quantized trie binary to `out_path`.

    order:      n-gram order.
    prune:      lmplz --prune thresholds per order (count <= threshold is dropped; first must be 0).
    vocab_size: keep only the `vocab_size` most frequent words (lmplz --limit_vocab_file); others are <unk>.
    memory:     lmplz -S.
    text_file:  read already tokenized LM-format sentences (one per line) instead of the corpora.
    save_text:  also write the tokenized training text there (to reuse with text_file).
    keep_arpa:  keep the intermediate ARPA file there.
    build_args: build_binary options before "trie" (default: 8-bit probabilities and
                backoffs, 22-bit pointer compression).
    log:        receives progress messages (default: this module's logger).
    tool_output: let lmplz and build_binary write their own progress to stderr (default: discarded).
    """
    out_path = Path(out_path)
    lmplz = find_kenlm_tool("lmplz", kenlm_bin)
    build_binary = find_kenlm_tool("build_binary", kenlm_bin)
    prune = [int(p) for p in prune]
    if prune and prune[0] != 0:
        raise ValueError("unigrams cannot be pruned: prune[0] must be 0")
    if vocab_size and not any(prune):
        # lmplz requires --prune with --limit_vocab_file; a zero threshold prunes nothing.
        prune = [0] * order
    out_path.parent.mkdir(parents=True, exist_ok=True)

    log = log or logger.info

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="unspin-lm-", dir=tmp_dir) as tmp:
        tmp = Path(tmp)
        arpa = Path(keep_arpa) if keep_arpa else tmp / "lm.arpa"
        cmd = [str(lmplz), "-o", str(order), "-S", memory, "-T", str(tmp), "--arpa", str(arpa)]
        if discount_fallback:
            cmd.append("--discount_fallback")
        if any(prune):
            cmd += ["--prune", *map(str, prune)]

        if text_file:
            source_path: Path | None = Path(text_file)
        elif vocab_size or save_text:
            source_path = Path(save_text) if save_text else tmp / "train.txt"
            log(f"tokenizing the train split into {source_path}")
            n = 0
            with open(source_path, "w", encoding="utf-8") as f:
                for s in iter_training_sentences(data_dir, workers):
                    f.write(_clean(s) + "\n")
                    n += 1
                    if n % 500000 == 0:
                        log(f"{n} sentences")
            log(f"{n} sentences tokenized")
        else:
            source_path = None

        if vocab_size:
            assert source_path is not None
            log(f"counting words to keep the {vocab_size} most frequent")
            counts: collections.Counter[str] = collections.Counter()
            with open(source_path, encoding="utf-8") as f:
                for line in f:
                    counts.update(line.split())
            # Ties broken by the word itself so that the vocabulary is reproducible.
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:vocab_size]
            vocab_file = tmp / "vocab.txt"
            vocab_file.write_text("\n".join(w for w, _ in ranked) + "\n", encoding="utf-8")
            log(f"{len(counts)} word types; kept {len(ranked)} (min count {ranked[-1][1]})")
            cmd += ["--limit_vocab_file", str(vocab_file)]

        log("running " + " ".join(cmd))
        stderr = None if tool_output else subprocess.DEVNULL
        if source_path is not None:
            with open(source_path, "rb") as f:
                proc = subprocess.run(cmd, stdin=f, stderr=stderr)
            rc = proc.returncode
        else:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=stderr)
            assert proc.stdin is not None
            n = 0
            try:
                for s in iter_training_sentences(data_dir, workers):
                    proc.stdin.write((_clean(s) + "\n").encode("utf-8"))
                    n += 1
                    if n % 500000 == 0:
                        log(f"{n} sentences")
            finally:
                proc.stdin.close()
            rc = proc.wait()
            log(f"{n} sentences streamed")
        if rc != 0:
            raise RuntimeError(f"lmplz failed with exit code {rc}: {' '.join(cmd)}")

        tmp_out = out_path.with_name(out_path.name + ".tmp")
        bcmd = [str(build_binary), *build_args, "-T", str(tmp / "build"), "trie", str(arpa), str(tmp_out)]
        log("running " + " ".join(bcmd))
        proc = subprocess.run(bcmd, stdout=stderr if stderr is not None else sys.stderr, stderr=stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"build_binary failed with exit code {proc.returncode}: {' '.join(bcmd)}")
        os.replace(tmp_out, out_path)
    log(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.0f} s")
    return out_path


# --------------------------------------------------------------------------- evaluation

def perplexity(model_path: str | os.PathLike, sentences: Iterable[str]) -> dict:
    """Per-token perplexity (</s> included) of LM-format sentences, with and without OOVs."""
    import kenlm

    model = kenlm.Model(str(model_path))
    logp = logp_iv = 0.0
    n = n_iv = oov = 0
    for s in sentences:
        for prob, _, is_oov in model.full_scores(s):
            logp += prob
            n += 1
            if is_oov:
                oov += 1
            else:
                logp_iv += prob
                n_iv += 1
    return {"tokens": n, "oov": oov, "oov_rate": oov / max(n, 1),
            "ppl": 10 ** (-logp / max(n, 1)), "ppl_no_oov": 10 ** (-logp_iv / max(n_iv, 1))}


def heldout_sentences(limit: int = 2000, data_dir: str | os.PathLike | None = None,
                      files: Sequence[str] = (corpus.WIKINEWS_FILE,)) -> list[str]:
    """The first `limit` LM-format sentences of the held-out news (the evaluation set of the model card)."""
    out: list[str] = []
    for para in corpus.iter_paragraphs("heldout", data_dir=data_dir, files=list(files)):
        out.extend(text.lm_sentences(para))
        if len(out) >= limit:
            break
    return out[:limit]


# --------------------------------------------------------------------------- tiny ARPA writer

def write_arpa(sentences: list[str], path: str | os.PathLike, order: int = 3, discount: float | None = None) -> Path:
    """Write a small backoff ARPA model of whitespace-tokenized `sentences` (pure Python).

    Interpolated absolute discounting: for a context h seen c(h) times with N1+(h)
    distinct continuations, P(w|h) = max(c(hw) - D, 0) / c(h) + D N1+(h) / c(h) P(w|h'),
    ending in a uniform distribution over the vocabulary (words, </s>, <unk>). The ARPA
    stores the interpolated P(w|h) of each seen n-gram and the backoff weight
    D N1+(h) / c(h) of each context, which is exactly the interpolated model.
    D is n1 / (n1 + 2 n2) per order (or `discount`), clipped to [0.1, 0.9].
    """
    if order < 2:
        raise ValueError("KenLM needs at least a bigram model: order must be >= 2")
    counts: list[collections.Counter] = [collections.Counter() for _ in range(order + 1)]
    for s in sentences:
        words = ["<s>", *s.split(), "</s>"]
        for i in range(1, len(words)):
            for n in range(1, order + 1):
                if i - n + 1 < 0:
                    break
                counts[n][tuple(words[i - n + 1:i + 1])] += 1
    # The start symbol is a context, never predicted: it needs a unigram entry.
    vocab = sorted({g[0] for g in counts[1]} | {"<unk>"})
    v_size = len(vocab)  # everything that can be predicted: words, </s>, <unk>

    discounts = [0.0] * (order + 1)
    for n in range(1, order + 1):
        n1 = sum(1 for c in counts[n].values() if c == 1)
        n2 = sum(1 for c in counts[n].values() if c == 2)
        d = discount if discount is not None else (n1 / (n1 + 2 * n2) if n1 + n2 else 0.5)
        discounts[n] = min(max(d, 0.1), 0.9)

    # Context totals and number of distinct continuations.
    ctx_total: list[collections.Counter] = [collections.Counter() for _ in range(order + 1)]
    ctx_types: list[collections.Counter] = [collections.Counter() for _ in range(order + 1)]
    for n in range(1, order + 1):
        for g, c in counts[n].items():
            ctx_total[n][g[:-1]] += c
            ctx_types[n][g[:-1]] += 1

    def gamma(n: int, ctx: tuple) -> float:
        return discounts[n] * ctx_types[n][ctx] / ctx_total[n][ctx]

    probs: list[dict] = [{} for _ in range(order + 1)]
    uniform = 1.0 / v_size
    for w in vocab:
        c = counts[1].get((w,), 0)
        probs[1][(w,)] = max(c - discounts[1], 0) / ctx_total[1][()] + gamma(1, ()) * uniform
    for n in range(2, order + 1):
        for g, c in counts[n].items():
            probs[n][g] = (c - discounts[n]) / ctx_total[n][g[:-1]] + gamma(n, g[:-1]) * probs[n - 1][g[1:]]

    def fmt(x: float) -> str:
        return f"{x:.6f}"

    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        sizes = [len(probs[1]) + 1] + [len(probs[n]) for n in range(2, order + 1)]
        for n, size in enumerate(sizes, 1):
            f.write(f"ngram {n}={size}\n")
        for n in range(1, order + 1):
            f.write(f"\n\\{n}-grams:\n")
            entries = sorted(probs[n].items())
            if n == 1:
                entries = sorted([*entries, (("<s>",), None)])
            for g, p in entries:
                lp = "-99" if p is None else fmt(math.log10(p))
                line = f"{lp}\t{' '.join(g)}"
                if n < order and ctx_total[n + 1].get(g):
                    line += f"\t{fmt(math.log10(gamma(n + 1, g)))}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    return path


# --------------------------------------------------------------------------- CLI

def _parse_prune(value: str) -> tuple[int, ...]:
    return tuple(int(x) for x in value.replace(",", " ").split())


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `unspin train-lm`."""
    p.add_argument("--out", default=None, help="output binary (default: unspin/models/lm.binary)")
    p.add_argument("--data-dir", default=None, help="data folder holding corpora/ (default: $UNSPIN_DATA, or "
                   "../shared/data beside the checkout)")
    p.add_argument("--order", type=int, default=SHIPPED_ORDER, help="n-gram order (default %(default)s)")
    p.add_argument("--prune", type=_parse_prune, default=SHIPPED_PRUNE,
                   help='lmplz --prune thresholds, e.g. "0 2 3 4" (count <= threshold is dropped; '
                        'default: the shipped model\'s)')
    p.add_argument("--vocab-size", type=int, default=SHIPPED_VOCAB_SIZE,
                   help="keep the N most frequent words, others are <unk> (default %(default)s; 0: all)")
    p.add_argument("--memory", default="8G", help="lmplz -S (default 8G)")
    p.add_argument("--kenlm-bin", default=None, help="folder with lmplz and build_binary (default: $KENLM_BIN, PATH)")
    p.add_argument("--build-args", default=" ".join(DEFAULT_BUILD_ARGS),
                   help='build_binary options before "trie" (default: "%(default)s")')
    p.add_argument("--text-file", default=None, help="use this tokenized text (one LM sentence per line) instead of the corpora")
    p.add_argument("--save-text", default=None, help="also write the tokenized training text here")
    p.add_argument("--keep-arpa", default=None, help="keep the ARPA file here")
    p.add_argument("--workers", type=int, default=None, help="tokenizer processes (default: all cores)")
    p.add_argument("--eval", type=int, default=2000, metavar="N",
                   help="report perplexity on N held-out news sentences afterwards (0: skip)")
    add_progress_option(p)
    p.add_argument("--quiet", dest="progress", action="store_false", default=None,
                   help="no progress on stderr (the same as --no-progress)")


def run(args: argparse.Namespace) -> int:
    """`unspin train-lm`: train, binarize and evaluate the n-gram model."""
    out = Path(args.out) if args.out else DEFAULT_LM_PATH
    progress = progress_enabled(args.progress)
    try:
        train_lm(out, data_dir=args.data_dir, order=args.order, prune=args.prune, vocab_size=args.vocab_size or None,
                 memory=args.memory, kenlm_bin=args.kenlm_bin, log=stderr_log("train-lm") if progress else None,
                 tool_output=progress,
                 build_args=args.build_args.split(), text_file=args.text_file, save_text=args.save_text,
                 keep_arpa=args.keep_arpa, workers=args.workers)
    except KenLMToolsMissing as e:
        print(e, file=sys.stderr)
        return 2
    if args.eval:
        stats = perplexity(out, heldout_sentences(args.eval, args.data_dir))
        print(f"held-out news ({args.eval} sentences, {stats['tokens']} tokens): perplexity {stats['ppl']:.1f}, "
              f"without OOVs {stats['ppl_no_oov']:.1f}, OOV rate {stats['oov_rate']:.2%}")
    return 0
