"""Neural rescoring of a sentence decoding: the transformer re-decides the 4-gram's changes.

The 4-gram decoder (`unspin.decode.Decoder`) sees three words either side of a span; the neural
scorer (`unspin.neural.NeuralScorer`) sees a few hundred characters of the document around it.
`NeuralRescorer.rescore` takes one `SentenceDecoding` and re-decides, with one scorer call per span:

(a) every decoded change: the candidates are the decoder's chosen original, its alternatives and
    the identity (the observed words); each gets ``neural + w_decoder * log10(decoder posterior)``
    (plus optional channel / 4-gram window terms); the new posterior is the base-10 softmax of
    those scores; the change is dropped when the identity wins, and its original is replaced when
    another candidate wins;
(b) word tokens the decoder left alone but found suspicious (``evidence[i].suspicion >=
    min_suspicion``, not covered by a change): the identity and the decoder's best `top`
    channel candidates, with the decoder's local view (4-gram window + channel, as the lattice
    scores them, normalized into a local posterior) as the prior; a change is added when a
    candidate beats the identity.

Changes that the neural scorer decided are `RescoredChange` objects (a `Change` with the
decoder's own choice and posterior kept beside the new ones), so every consumer of `Change`
works unchanged. The posteriors are NOT calibrated like `Engine.check`'s confidences (its span
model is fitted on the 4-gram posteriors): threshold them yourself (see unspin.build.bench_neural).

>>> rescorer = NeuralRescorer(NeuralScorer.load(dtype="bfloat16"))       # doctest: +SKIP
>>> d = engine.decoder.decode(tokens)                                      # doctest: +SKIP
>>> rescorer.rescore(text, d, engine.decoder).changes                      # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from .decode import Change, Decoder, SentenceDecoding, _surface
from .lexicon import DISTRIBUTIONAL_SOURCES, Candidate
from .text import Token, match_case

# Source tag of the scorer's decisions (`RescoredChange.decided_by`).
NEURAL = "neural"


class ContextScorer(Protocol):
    """What the rescorer needs of a scorer (`unspin.neural.NeuralScorer` has it)."""

    def score_alternatives(self, left: str, alternatives: Sequence[str], right: str = "") -> list[float]:
        """log10 scores of ``left + alternative + right``, comparable among one call's alternatives."""
        ...

    def next_word_logprobs(self, left: str, words: Sequence[str]) -> list[float]:
        """log10 P of each word's first token after `left` (only needed for `RescoreWeights.proposals`)."""
        ...


@dataclass(frozen=True)
class RescoreWeights:
    """How the neural score and the decoder's own view are combined (all log10).

    combined = neural + decoder * log10(decoder posterior) + channel * channel score
               + lm * 4-gram window score

    The decoder posterior of (a) is the decoder's sentence-level posterior of each candidate (LM of
    the whole decoded sentence + channel); for (b) it is the local posterior of the lattice's
    window scores (4-gram on `DecoderConfig.window` words either side + channel). Since
    log10(posterior) = LM + channel + const, `decoder=1` weighs the 4-gram and the channel 1:1;
    `decoder=0, channel=1, lm=0.25` is the combination measured best on the real dev pairs.
    """

    # Default: the best setting of unspin.build.bench_neural (10 held-out articles, Moby spin):
    # WER cut 11.4% at 0.29 false edits per 100 genuine words (posterior >= 0.7), against
    # `decoder=1`'s 11.5% at 1.32; the fast path alone cuts 4.7% at 0.08.
    decoder: float = 0.0
    channel: float = 1.0
    lm: float = 0.25
    # (b): the least decoder suspicion for an undecided word to be rescored, and how many of its
    # channel candidates (best channel score first) compete with it.
    min_suspicion: float = 0.3
    top: int = 4
    # Document context: the left starts at a sentence start at least `min_left_chars` and at most
    # `max_left_chars` before the span's sentence (the scorer caps it further, to its
    # `max_left_tokens`; keep that cap above the left's length, or the shared-left reuse is lost);
    # the right is `right_chars` (the scorer keeps its `max_right_words`).
    min_left_chars: int = 120
    max_left_chars: int = 400
    right_chars: int = 200
    # A posterior floor inside log10 (a candidate the decoder gave ~0 is not infinitely bad).
    min_posterior: float = 1e-6
    # Proposals (off at 0): a single word's thesaurus relatives two steps away (up to
    # `proposal_pool`, most paths first), ranked by the scorer's probability of their first token in
    # the slot; the best `proposals` not already candidates compete too, at the channel score of an
    # unlisted substitution. They reach originals the channel lacks (bench/levers.md, session 10).
    proposals: int = 0
    proposal_pool: int = 400


@dataclass(frozen=True)
class RescoredChange(Change):
    """A `Change` whose candidate the neural rescorer chose; `posterior`, `p_identity` and
    `alternatives` are the rescorer's, the decoder's are kept here."""

    decided_by: str = NEURAL
    decoder_original: str | None = None  # the decoder's choice (None: the decoder kept the words)
    decoder_posterior: float = 0.0  # the decoder's posterior of the candidate now chosen
    neural_gain: float = 0.0  # neural log10 score of the chosen candidate over the identity's

    @property
    def changed_choice(self) -> bool:
        """Whether the rescorer chose another original than the decoder did (or added the change)."""
        return self.decoder_original is None or self.decoder_original.lower() != self.original.lower()


@dataclass
class SpanScoring:
    """The candidates of one span and every score the decision combines (index 0: the identity)."""

    first: int
    last: int
    words: list[str]          # normalized, space-joined
    surface: list[str]        # as scored (case carried over from the observed first token)
    neural: list[float]
    decoder_logp: list[float]  # log10 of the decoder's posterior (sentence-level (a), local (b))
    channel: list[float]
    window: list[float]       # 4-gram window score (the lattice's: `DecoderConfig.window` words either side)
    change: Change | None     # the decoder's change for (a), None for (b)
    cands: list[Candidate | None]  # channel candidate of each (None: identity / not in the channel)


def _softmax10(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    mass = [10 ** (s - top) for s in scores]
    z = sum(mass)
    return [m / z for m in mass]


# Where a sentence ends: the left context starts after one, so that every span of a sentence
# shares its left context's start (the scorer then reuses the model state of the shared part).
_SENTENCE_END = re.compile(r"""[.!?]["')\]’”]*\s+|\n""")


def _left_anchor(text: str, sent_start: int, min_chars: int, max_chars: int) -> int:
    """Where the left context of the spans of the sentence starting at `sent_start` begins: the
    start of the latest sentence that begins at least `min_chars` before it, no more than
    `max_chars` back (else a word boundary `max_chars` back; 0 near the document start)."""
    lo = max(0, sent_start - max_chars)
    hi = sent_start - min_chars
    if hi <= 0:
        return 0
    best = None
    for m in _SENTENCE_END.finditer(text, lo, max(lo, hi)):
        best = m.end()
    if best is not None:
        return best
    if lo == 0:
        return 0
    cut = text.find(" ", lo, sent_start)
    return cut + 1 if cut >= 0 else sent_start


def _context(text: str, anchor: int, start: int, end: int, right_chars: int) -> tuple[str, str]:
    """Document text from `anchor` to `start`, and after `end` (cut at a word boundary)."""
    left = text[anchor:start]
    hi = min(len(text), end + right_chars)
    right = text[end:hi]
    if hi < len(text):
        cut = right.rfind(" ")
        right = right[:cut] if cut > 0 else right
    return left.strip(), right.strip()


class NeuralRescorer:
    """Re-decides a decoding's changes (and suspicious undecided words) with a context scorer."""

    def __init__(self, scorer: ContextScorer, weights: RescoreWeights = RescoreWeights()):
        self.scorer = scorer
        self.weights = weights
        self.calls = 0  # scorer calls made
        self.alternatives_scored = 0

    # -- scoring -----------------------------------------------------------
    def _left_right(self, text: str, tokens: Sequence[Token], first: int, last: int) -> tuple[str, str]:
        w = self.weights
        anchor = _left_anchor(text, tokens[0].start, w.min_left_chars, w.max_left_chars)
        return _context(text, anchor, tokens[first].start, tokens[last - 1].end, w.right_chars)

    def _score(self, text: str, tokens: Sequence[Token], first: int, last: int,
               surfaces: list[str]) -> list[float]:
        left, right = self._left_right(text, tokens, first, last)
        self.calls += 1
        self.alternatives_scored += len(surfaces)
        return list(self.scorer.score_alternatives(left, surfaces, right))

    def proposals(self, text: str, tokens: Sequence[Token], i: int, decoder: Decoder,
                  exclude: Iterable[str]) -> list[str]:
        """Words proposed for token `i` beyond its candidates (`RescoreWeights.proposals`): relatives
        of its relatives in the channel, the scorer's likeliest in the slot first.

        >>> rescorer.proposals(text, tokens, 3, decoder, {"mentioned", "said"})   # doctest: +SKIP
        ['told', 'stated']
        """
        w = self.weights
        observed = tokens[i].norm
        if w.proposals <= 0 or tokens[i].kind != "word":
            return []
        first_hop = [o for o, _ in decoder.channel.originals((observed,)) if " " not in o]
        paths: Counter[str] = Counter()
        for word in first_hop[:60]:  # the first relatives by channel rank: enough paths, bounded cost
            for o, _ in decoder.channel.originals((word,)):
                if " " not in o:
                    paths[o] += 1
        skip = set(exclude) | {observed}
        pool = [o for o, _ in paths.most_common(w.proposal_pool) if o not in skip and o.isalpha()]
        if not pool:
            return []
        left, _ = self._left_right(text, tokens, i, i + 1)
        surfaces = [match_case(tokens[i].text, o) for o in pool]
        ranked = sorted(zip(self.scorer.next_word_logprobs(left, surfaces), pool), key=lambda x: -x[0])
        return [o for _, o in ranked[:w.proposals]]

    def score_change(self, text: str, decoding: SentenceDecoding, decoder: Decoder,
                     change: Change) -> SpanScoring:
        """(a): the decoded change's candidates (chosen, alternatives, identity) scored."""
        tokens = decoding.tokens
        norms = [t.norm for t in tokens]
        identity = " ".join(norms[change.first:change.last])
        post = {change.original.lower(): change.posterior}
        for alt, p in change.alternatives:
            post.setdefault(alt, p)
        post.setdefault(identity, change.p_identity)
        chosen = change.original.lower()
        words = [identity] + [c for c in post if c != identity]
        if change.last - change.first == 1:
            words += self.proposals(text, tokens, change.first, decoder, words)
        key = tuple(norms[change.first:change.last])
        by_joined = {joined: (ch, cand) for joined, ch, cand in decoder.scored_candidates(key)}
        keep = decoder.config.log_p_keep * (change.last - change.first)
        channel, cands = [], []
        for wd in words:
            if wd == identity:
                channel.append(keep)
                cands.append(None)
            elif wd == chosen:
                channel.append(change.channel_score)
                cands.append(by_joined.get(wd, (0, None))[1])
            else:
                ch, cand = by_joined.get(wd, (decoder.config.weights.log_p_sub, None))
                channel.append(ch)
                cands.append(cand)
        first_text = tokens[change.first].text
        surface = [change.observed] + [match_case(first_text, wd) for wd in words[1:]]
        floor = math.log10(self.weights.min_posterior)
        decoder_logp = [max(floor, math.log10(max(post.get(wd, 0.0), 1e-300))) for wd in words]
        window = [decoder.window_score(norms, change.first, change.last, wd) for wd in words]
        neural = self._score(text, tokens, change.first, change.last, surface)
        return SpanScoring(change.first, change.last, words, surface, neural, decoder_logp, channel, window,
                           change, cands)

    def score_token(self, text: str, decoding: SentenceDecoding, decoder: Decoder, i: int) -> SpanScoring | None:
        """(b): an undecided word's identity and its best channel candidates scored (None: none)."""
        tokens = decoding.tokens
        tok = tokens[i]
        norms = [t.norm for t in tokens]
        name_like = i > 0 and tok.text[:1].isupper()
        # Channel scores as the lattice weighs them, best first.
        scored = decoder.scored_candidates((tok.norm,))
        cands = [(joined, ch, cand) for joined, ch, cand in scored
                 if not (name_like and cand.sources <= DISTRIBUTIONAL_SOURCES)][:self.weights.top]
        if not cands:
            return None
        words = [tok.norm] + [j for j, _, _ in cands]
        channel = [decoder.config.log_p_keep] + [ch for _, ch, _ in cands]
        proposed = self.proposals(text, tokens, i, decoder, [j for j, _, _ in scored])
        words += proposed
        channel += [decoder.config.weights.log_p_sub] * len(proposed)
        window = [decoder.window_score(norms, i, i + 1, wd) for wd in words]
        local = [wn + ch for wn, ch in zip(window, channel)]
        floor = math.log10(self.weights.min_posterior)
        decoder_logp = [max(floor, math.log10(max(p, 1e-300))) for p in _softmax10(local)]
        surface = [tok.text] + [match_case(tok.text, wd) for wd in words[1:]]
        neural = self._score(text, tokens, i, i + 1, surface)
        return SpanScoring(i, i + 1, words, surface, neural, decoder_logp, channel, window, None,
                           [None] + [c for _, _, c in cands] + [None] * len(proposed))

    def score_spans(self, text: str, decoding: SentenceDecoding, decoder: Decoder) -> list[SpanScoring]:
        """Every span the rescorer looks at in one sentence, scored once (decide with `decide`)."""
        out = [self.score_change(text, decoding, decoder, c) for c in decoding.changes]
        covered = {i for c in decoding.changes for i in range(c.first, c.last)}
        for i, (tok, ev) in enumerate(zip(decoding.tokens, decoding.evidence)):
            if tok.kind != "word" or i in covered or ev.suspicion < self.weights.min_suspicion:
                continue
            sc = self.score_token(text, decoding, decoder, i)
            if sc is not None:
                out.append(sc)
        return out

    # -- deciding ----------------------------------------------------------
    def combined(self, sc: SpanScoring, weights: RescoreWeights | None = None) -> list[float]:
        w = weights or self.weights
        return [n + w.decoder * d + w.channel * c + w.lm * lm
                for n, d, c, lm in zip(sc.neural, sc.decoder_logp, sc.channel, sc.window)]

    def decide(self, decoding: SentenceDecoding, scorings: Sequence[SpanScoring],
               weights: RescoreWeights | None = None) -> SentenceDecoding:
        """A new decoding whose changes are the scorings' winners (identity winners dropped)."""
        tokens = decoding.tokens
        changes: list[Change] = []
        for sc in scorings:
            post = _softmax10(self.combined(sc, weights))
            best = max(range(len(post)), key=lambda k: post[k])
            if best == 0:
                continue
            alternatives = tuple(sorted(((sc.words[k], post[k]) for k in range(len(post)) if k != best),
                                        key=lambda x: -x[1]))
            neural_gain = sc.neural[best] - sc.neural[0]
            cand = sc.cands[best]
            dec_post = 10 ** sc.decoder_logp[best]
            if sc.change is not None:
                old = sc.change
                base = dict((f.name, getattr(old, f.name)) for f in dataclasses.fields(Change))
                if sc.words[best] != old.original.lower():
                    # log10 p_new - log10 p_old = (LM_new + ch_new) - (LM_old + ch_old) in the decoder.
                    k_old = sc.words.index(old.original.lower()) if old.original.lower() in sc.words else best
                    lm_gain = old.lm_gain + (sc.decoder_logp[best] - sc.decoder_logp[k_old]) \
                        - (sc.channel[best] - sc.channel[k_old])
                    base.update(original=match_case(tokens[sc.first].text, sc.words[best]), lm_gain=lm_gain,
                                channel_score=sc.channel[best])
                    if cand is not None:
                        base.update(sources=tuple(sorted(cand.sources)), cosine=cand.cosine,
                                    zipf_gain=cand.zipf_original - cand.zipf_observed)
                    else:  # a proposal: no thesaurus lists the pair
                        base.update(sources=(), cosine=0.0, zipf_gain=0.0)
                base.update(posterior=post[best], p_identity=post[0], alternatives=alternatives)
                changes.append(RescoredChange(**base, decoder_original=old.original, decoder_posterior=dec_post,
                                              neural_gain=neural_gain))
            else:
                observed = tokens[sc.first:sc.last]
                changes.append(RescoredChange(
                    first=sc.first, last=sc.last, start=observed[0].start, end=observed[-1].end,
                    observed=_surface(observed), original=match_case(observed[0].text, sc.words[best]),
                    posterior=post[best], p_identity=post[0], lm_gain=sc.window[best] - sc.window[0],
                    channel_score=sc.channel[best],
                    sources=tuple(sorted(cand.sources)) if cand is not None else (),
                    cosine=cand.cosine if cand is not None else 0.0,
                    zipf_gain=(cand.zipf_original - cand.zipf_observed) if cand is not None else 0.0,
                    alternatives=alternatives, decoder_original=None, decoder_posterior=dec_post,
                    neural_gain=neural_gain))
        changes.sort(key=lambda c: c.first)
        return dataclasses.replace(decoding, changes=changes)

    def rescore(self, text: str, decoding: SentenceDecoding, decoder: Decoder) -> SentenceDecoding:
        """`decoding` (of a sentence of `text`; token offsets index `text`) with its changes
        re-decided by the scorer, and suspicious undecided words possibly changed."""
        return self.decide(decoding, self.score_spans(text, decoding, decoder))


def apply_changes(text: str, changes: Sequence[Change], min_posterior: float = 0.0) -> str:
    """`text` with each change at or above `min_posterior` put in place (changes never overlap)."""
    out = text
    for c in sorted(changes, key=lambda c: -c.start):
        if c.posterior >= min_posterior:
            out = out[:c.start] + c.original + out[c.end:]
    return out
