"""Language model behind a small interface (`LanguageModel`), so that another scorer (a neural
LM) can stand in for KenLM.

Scores are log10 probabilities, as KenLM gives them.

>>> lm = load_lm()                                     # doctest: +SKIP
>>> round(lm.sentence_score("the minister said the plan would work"), 1)   # doctest: +SKIP
-19.0
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Hashable, Protocol, Sequence

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_LM_PATH = MODELS_DIR / "lm.binary"


class LanguageModel(Protocol):
    """What the decoder and the engine call on a language model, exactly as they call it.

    Words are normalized tokens (`unspin.text.Token.norm`: lowercased, quotes unified), and
    every score is a log10 probability. A model need not know every word: unknown words
    get the model's own unknown-word probability, never an error.

    States are opaque to the caller but must be hashable, and equal exactly when they
    predict alike: the decoder merges hypotheses that reach equal states and keeps the
    better one, so two states that compare equal but predict differently lose hypotheses.

    The contract, shown on the shipped KenLM (`load_lm`): stepping word by word adds up
    to `sentence_score`.

    >>> lm: LanguageModel = load_lm()                               # doctest: +SKIP
    >>> state, total = lm.begin_state(), 0.0                        # doctest: +SKIP
    >>> for word in "the minister said".split():                    # doctest: +SKIP
    ...     logp, state = lm.score(state, word)
    ...     total += logp
    >>> round(total + lm.end_score(state), 2), round(lm.sentence_score("the minister said"), 2)  # doctest: +SKIP
    (-9.14, -9.14)
    """

    order: int
    """The longest word sequence the model conditions on, the predicted word included (n for an
    n-gram model); reported with results. The decoder's context window is its own setting
    (`DecoderConfig.window`)."""

    def begin_state(self) -> Hashable:
        """The state at the start of a sentence (after <s>)."""
        ...

    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        """log10 P(word | state) and the state after `word`. Called once per word per hypothesis
        in the decoder's beam search."""
        ...

    def end_score(self, state: Hashable) -> float:
        """log10 P(</s> | state): the sentence ends here."""
        ...

    def sentence_score(self, text: str, bos: bool = True, eos: bool = True) -> float:
        """log10 P of `text`, normalized words joined by single spaces; `bos`: the text starts a
        sentence (scored after <s>), `eos`: it ends one (</s> is scored). With bos=False the first
        word is scored without context; this is how the decoder asks how common words are anywhere,
        and how it scores a candidate inside a window of context cut from a longer sentence.
        Must equal the sum of `score` steps from `begin_state()` (plus `end_score`) when bos (and eos)."""
        ...

    def contains(self, word: str) -> bool:
        """True if `word` is in the model's vocabulary (the engine's English and OOV features)."""
        ...

    def token_scores(self, words: Sequence[str]) -> list[tuple[float, int]]:
        """For each word of a sentence that starts at <s>: (log10 P(word | preceding words), the
        length of the context the model matched, counting the word itself: 1 to `order`). An
        n-gram model gives its matched n-gram length; another model gives how many words of
        context it effectively used, capped at `order`."""
        ...


class KenLM:
    """A KenLM n-gram model (ARPA or binary); implements `LanguageModel`, scores in log10.

    >>> lm = KenLM("unspin/models/lm.binary")                         # doctest: +SKIP
    >>> lm.order, lm.contains("minister"), lm.contains("xqzv")      # doctest: +SKIP
    (4, True, False)
    """

    def __init__(self, path: str | os.PathLike):
        import kenlm

        self._kenlm = kenlm
        self.path = Path(path)
        self.model = kenlm.Model(str(path))
        self.order = self.model.order

    def __reduce__(self):
        """Pickled by its file path (for worker processes); the model is memory-mapped again there."""
        return (KenLM, (str(self.path),))

    def begin_state(self) -> Any:
        """The state after <s> (a `kenlm.State`).

        >>> round(lm.score(lm.begin_state(), "the")[0], 2)          # doctest: +SKIP
        -0.73
        """
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def null_state(self) -> Any:
        """A state with no context at all (not even <s>): the next word is scored as a unigram.

        >>> round(lm.score(lm.null_state(), "the")[0], 2)           # doctest: +SKIP
        -2.62
        """
        state = self._kenlm.State()
        self.model.NullContextWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        """log10 P(word | state) and the state after `word`.

        >>> logp, state = lm.score(lm.begin_state(), "the")         # doctest: +SKIP
        >>> round(logp, 2)                                          # doctest: +SKIP
        -0.73
        """
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out), out

    def end_score(self, state: Any) -> float:
        """log10 P(</s> | state).

        >>> round(lm.end_score(lm.score(lm.begin_state(), "the")[1]), 2)   # doctest: +SKIP
        -4.21
        """
        return self.model.BaseScore(state, "</s>", self._kenlm.State())

    def sentence_score(self, text: str | Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 P of space-joined normalized words (a sequence of words is also accepted here).

        >>> round(lm.sentence_score(["the", "minister", "said"]), 2)   # doctest: +SKIP
        -9.14
        """
        return self.model.score(text if isinstance(text, str) else " ".join(text), bos=bos, eos=eos)

    def contains(self, word: str) -> bool:
        """True if `word` is in the model's vocabulary.

        >>> lm.contains("minister"), lm.contains("xqzv")            # doctest: +SKIP
        (True, False)
        """
        return word in self.model

    def token_scores(self, words: Sequence[str]) -> list[tuple[float, int]]:
        """(log10 P(word | preceding words), matched n-gram length) per word, from <s>.

        >>> [(round(lp, 2), n) for lp, n in lm.token_scores(["the", "minister", "said"])]   # doctest: +SKIP
        [(-0.73, 2), (-3.64, 3), (-1.39, 4)]
        """
        scores = list(self.model.full_scores(" ".join(words), bos=True, eos=False))
        return [(lp, ngram) for lp, ngram, _oov in scores]


class CachedScores:
    """A `LanguageModel` that remembers its last `maxsize` sentence scores: two decoders that score
    the same windows (the engine's first and spun passes) then pay for each window once.

    >>> cached = CachedScores(lm)                                   # doctest: +SKIP
    >>> cached.sentence_score("the minister said") == lm.sentence_score("the minister said")   # doctest: +SKIP
    True
    """

    def __init__(self, lm: LanguageModel, maxsize: int = 200_000):
        self.lm = lm
        self.maxsize = maxsize
        self.sentence_score = functools.lru_cache(maxsize=maxsize)(lm.sentence_score)

    def __reduce__(self):
        return (CachedScores, (self.lm, self.maxsize))

    def begin_state(self) -> Hashable:
        return self.lm.begin_state()

    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        return self.lm.score(state, word)

    def end_score(self, state: Hashable) -> float:
        return self.lm.end_score(state)

    def contains(self, word: str) -> bool:
        return self.lm.contains(word)

    def token_scores(self, words: Sequence[str]) -> list[tuple[float, int]]:
        return self.lm.token_scores(words)


class ModelMissing(RuntimeError):
    """A shipped model file (LM, channel, calibration) is not where it should be.

    >>> load_lm("no/such/lm.binary")            # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    unspin.lm.ModelMissing: language model not found at no/such/lm.binary; build it with `unspin train-lm` ...
    """


@functools.lru_cache(maxsize=4)
def load_lm(path: str | None = None) -> KenLM:
    """Load a model once per process; the default is $UNSPIN_LM, else the one shipped in the package.

    >>> load_lm() is load_lm()                                      # doctest: +SKIP
    True
    >>> load_lm().order                                             # doctest: +SKIP
    4
    """
    lm_path = Path(path) if path else Path(os.environ.get("UNSPIN_LM", DEFAULT_LM_PATH))
    if not lm_path.exists():
        raise ModelMissing(
            f"language model not found at {lm_path}; build it with `unspin train-lm` or set UNSPIN_LM"
        )
    return KenLM(lm_path)
