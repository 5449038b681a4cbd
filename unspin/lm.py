"""Language model behind a small interface, so that a neural scorer can replace KenLM later.

Scores are log10 probabilities, as KenLM gives them.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_LM_PATH = MODELS_DIR / "lm.binary"


class LanguageModel(Protocol):
    """What the decoder needs from a language model: incremental scoring with a state.

    States must be hashable and equal exactly when they predict alike (the decoder merges
    hypotheses that reach the same state).
    """

    order: int

    def begin_state(self) -> Any: ...

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        """log10 P(word | state) and the state after `word`."""
        ...

    def end_score(self, state: Any) -> float:
        """log10 P(</s> | state)."""
        ...

    def sentence_score(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float: ...

    def contains(self, word: str) -> bool: ...

    def token_scores(self, words: Sequence[str]) -> list[tuple[float, int]]:
        """(log10 P(word | history), matched n-gram length) for each word, the sentence starting at <s>."""
        ...


class KenLM:
    """A KenLM n-gram model (ARPA or binary)."""

    def __init__(self, path: str | os.PathLike):
        import kenlm

        self._kenlm = kenlm
        self.path = Path(path)
        self.model = kenlm.Model(str(path))
        self.order = self.model.order

    def begin_state(self) -> Any:
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def null_state(self) -> Any:
        state = self._kenlm.State()
        self.model.NullContextWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out), out

    def end_score(self, state: Any) -> float:
        return self.model.BaseScore(state, "</s>", self._kenlm.State())

    def sentence_score(self, words: Sequence[str] | str, bos: bool = True, eos: bool = True) -> float:
        """log10 P of the words (a sequence, or one space-joined string: the fast path)."""
        return self.model.score(words if isinstance(words, str) else " ".join(words), bos=bos, eos=eos)

    def contains(self, word: str) -> bool:
        return word in self.model

    def token_scores(self, words: Sequence[str]) -> list[tuple[float, int]]:
        scores = list(self.model.full_scores(" ".join(words), bos=True, eos=False))
        return [(lp, ngram) for lp, ngram, _oov in scores]


class ModelMissing(RuntimeError):
    """A shipped model file (LM, channel, calibration) is not where it should be."""


@functools.lru_cache(maxsize=4)
def load_lm(path: str | None = None) -> KenLM:
    """Load a model once per process; the default is the one shipped in the package."""
    lm_path = Path(path) if path else Path(os.environ.get("UNSPIN_LM", DEFAULT_LM_PATH))
    if not lm_path.exists():
        raise ModelMissing(
            f"language model not found at {lm_path}; build it with `unspin train-lm` or set UNSPIN_LM"
        )
    return KenLM(lm_path)
