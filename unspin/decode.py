"""Noisy-channel decoder: the most likely original wording of a (possibly) spun sentence.

For each span of one to `channel.max_len` observed tokens the channel proposes
candidate originals; a language model scores whole candidate sequences; a beam
search over the sentence lattice picks the best one. Each change gets a local
posterior: the share of probability mass its candidate holds against the other
candidates for the same span (the identity included) with the rest of the
decoded sentence fixed.

Scores are log10 probabilities throughout, as KenLM returns them.

>>> from unspin.lexicon import Channel
>>> from unspin.lm import load_lm
>>> from unspin.text import sentences
>>> decoder = Decoder(load_lm(), Channel.load_default())                       # doctest: +SKIP
>>> result = decoder.decode(next(sentences("The minister stated that the plan would work.")))  # doctest: +SKIP
>>> [(c.observed, c.original, round(c.posterior, 2)) for c in result.changes]  # doctest: +SKIP
[('stated', 'said', 0.98)]
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

from .lexicon import DISTRIBUTIONAL_SOURCES, FUNCTION_WORD_SOURCES, Candidate, Channel, curated_sources
from .lm import LanguageModel
from .names import NameGazetteer
from .text import FUNCTION_WORDS, Token, match_case


# Observed keys (and word sequences) whose candidates and frequencies stay cached.
CACHE_KEYS = 100_000

class ChannelPrior(Protocol):
    """Evidence from outside a sentence that its spinner makes a substitution (`unspin.profile`).

    Anything with a `bonus` method will do; `profile.ProfilePrior` is the shipped one:

    >>> from unspin.profile import SpinnerProfile
    >>> profile = SpinnerProfile()
    >>> profile.add(("stated",), "said", 0.9)
    >>> prior: ChannelPrior = profile.prior()
    >>> round(prior.bonus(("stated",), "said"), 3), prior.bonus(("stated",), "declared")
    (0.279, 0.0)
    """

    def bonus(self, key: tuple[str, ...], original: str) -> float:
        """Extra log10 channel score for `original` (normalized, space-joined) behind the observed key."""
        ...

    def known_originals(self, key: tuple[str, ...]) -> list[str]:
        """Originals the prior has seen behind the observed key (those the channel lacks become
        candidates too: a profile learned from traced copies knows pairs no thesaurus lists)."""
        ...


@dataclass(frozen=True)
class ChannelWeights:
    """How the channel turns candidate features into log10 P(observed | original).

    A substitution pays `log_p_sub` (the prior that a term was spun at all) plus
    bonuses that reward what real spinners do: swap words listed together in
    several thesauri, swap distributionally close words, and replace common words
    with rarer ones (so the original is usually the more frequent of the two).

    >>> weights = ChannelWeights()
    >>> said = Candidate("said", frozenset({"moby", "roget", "wordnet"}), 0.575, 4.75, 6.0)
    >>> round(weights.score(said, n_observed=1), 2)    # "stated" -> "said": 3 thesauri, more frequent
    -1.73
    >>> ChannelWeights(log_p_sub=-4.0).log_p_sub        # a stricter channel
    -4.0
    """

    # Chosen by a grid search on the "calib" corpus split (WER cut against false edits).
    log_p_sub: float = -3.2
    per_extra_source: float = 0.35
    cosine: float = 0.8
    zipf_gain: float = 0.25
    zipf_gain_cap: float = 2.0
    length_change: float = -0.3
    # The LM prefers frequent words anywhere; this share of the candidate's unigram
    # advantage is taken back, so that a change must be earned by its context.
    frequency_discount: float = 0.2
    # Sources that do not come from a curated thesaurus get a penalty of their own.
    source_bonus: dict = field(default_factory=lambda: {
        "tortured": 1.0, "numbers": 0.4, "spelling": 0.6, "glove": -2.0,
    })

    def score(self, cand: Candidate, n_observed: int) -> float:
        """log10 channel score of reading `cand.original` behind `n_observed` observed tokens.

        >>> glove_only = Candidate("plan", frozenset({"glove"}), 0.7, 4.0, 5.0)
        >>> round(ChannelWeights().score(glove_only, 1), 2)    # distributional only: penalized
        -4.39
        """
        s = self.log_p_sub
        thesauri = len(curated_sources(cand.sources))
        s += self.per_extra_source * max(0, thesauri - 1)
        # The most trusted source counts: a pair found by GloVe and a thesaurus is a thesaurus pair.
        s += max((self.source_bonus.get(src, 0.0) for src in cand.sources if src != "inflection"), default=0.0)
        s += self.cosine * max(0.0, cand.cosine)
        gain = cand.zipf_original - cand.zipf_observed
        s += self.zipf_gain * max(-self.zipf_gain_cap, min(self.zipf_gain_cap, gain))
        s += self.length_change * abs(len(cand.original.split()) - n_observed)
        return s


@dataclass(frozen=True)
class DecoderConfig:
    """Search settings of the `Decoder` (scores and slacks in log10; `window` in tokens).

    >>> config = DecoderConfig(beam=10)
    >>> config.beam, config.window, config.weights.log_p_sub
    (10, 3, -3.2)
    """

    beam: int = 6
    # Candidates whose local LM gain falls this far below their channel cost are not searched.
    prefilter_slack: float = 1.5
    prefilter_top: int = 6
    # Candidates per observed span, best channel score first, that are scored in context.
    max_candidates: int = 20
    window: int = 3
    log_p_keep: float = -0.01
    weights: ChannelWeights = field(default_factory=ChannelWeights)
    # log10 bonus for a change inside a run of capitalized words that makes it a known name
    # ("Harbor Tank" -> "Harbor Bank"); a known name itself is never changed.
    name_bonus: float = 2.0
    # Sweeps of `Decoder._refine` over the searched path's changes (0: the beam search's path as it is).
    refine_sweeps: int = 1


@dataclass(frozen=True)
class Change:
    """One decoded substitution: observed tokens [first, last) replaced by `original`.

    Made by `Decoder.decode` (`SentenceDecoding.changes`):

    >>> change = decoder.decode(next(sentences("The minister stated that the plan would work."))).changes[0]
    ... # doctest: +SKIP
    >>> change.observed, change.original, (change.start, change.end), change.sources   # doctest: +SKIP
    ('stated', 'said', (13, 19), ('fallows_soule', 'inflection', 'moby', 'roget', 'wordnet'))
    >>> round(change.posterior, 3), round(change.lm_gain, 2), change.alternatives[0][0]  # doctest: +SKIP
    (0.978, 3.09, 'stated')
    """

    first: int  # token index (into the sentence token list)
    last: int
    start: int  # character offsets into the document
    end: int
    observed: str
    original: str  # with the observed case carried over
    posterior: float  # P(this candidate | rest of decoded sentence), identity included
    p_identity: float  # P(the observed words are original | rest)
    lm_gain: float  # log10 LM improvement over keeping the observed words
    channel_score: float
    sources: tuple[str, ...]
    cosine: float  # GloVe cosine of observed and original
    zipf_gain: float  # how much more frequent the original is (wordfreq zipf)
    alternatives: tuple[tuple[str, float], ...]  # other candidates and their posteriors


@dataclass
class TokenEvidence:
    """What the decoder saw at one token, for the token-level spin classifier.

    One per token in `SentenceDecoding.evidence`; a fresh one is all zeros:

    >>> TokenEvidence().n_candidates
    0
    >>> ev = result.evidence[2]      # "stated" in "The minister stated that ..."     # doctest: +SKIP
    >>> round(ev.suspicion, 2), round(ev.logprob, 2), ev.ngram, ev.n_candidates       # doctest: +SKIP
    (0.98, -3.69, 2, 20)
    """

    suspicion: float = 0.0  # 1 - P(identity) against every candidate, in a window of observed context
    logprob: float = 0.0  # log10 P(token | preceding words) in the sentence as written
    unigram: float = 0.0  # log10 P(token) with no context
    ngram: int = 0  # length of the longest n-gram the LM matched ending here
    n_candidates: int = 0  # channel candidates scored here (spans starting at this token)
    best_gain: float = 0.0  # best candidate's window score over the identity's, channel included (<= 0: none)


@dataclass
class SentenceDecoding:
    """The decoder's result for one sentence: its tokens, the changes, and log10 scores.

    >>> from unspin.text import tokenize
    >>> SentenceDecoding(tokenize("It rained."), [], -6.1, -6.13, n_words=2).changes
    []
    >>> result = decoder.decode(next(sentences("The minister stated that the plan would work.")))  # doctest: +SKIP
    >>> round(result.observed_logprob, 2), round(result.decoded_logprob, 2), result.n_words   # doctest: +SKIP
    (-17.46, -15.89, 8)
    """

    tokens: list[Token]
    changes: list[Change]
    observed_logprob: float  # log10 LM score of the sentence as written
    decoded_logprob: float  # log10 LM + channel score of the best path
    n_words: int
    evidence: list[TokenEvidence] = field(default_factory=list)


@dataclass(frozen=True)
class _Edge:
    first: int
    last: int
    words: tuple[str, ...]
    channel: float
    cand: Candidate | None  # None = identity


class Decoder:
    """Beam search over a sentence lattice with a language model and a channel.

    >>> decoder = Decoder(load_lm(), Channel.load_default(), DecoderConfig(beam=6))   # doctest: +SKIP
    >>> decoder.decode(next(sentences("The minister stated that the plan would work."))).changes[0].original
    ... # doctest: +SKIP
    'said'
    """

    def __init__(self, lm: LanguageModel, channel: Channel, config: DecoderConfig | None = None,
                 names: NameGazetteer | None = None, ranking: "Decoder | None" = None):
        self.lm = lm
        self.channel = channel
        self.config = config or DecoderConfig()
        # Known names (None: capitalized words get no special care beyond the distributional rule).
        self.names = names
        # `ranking`: a decoder over the same LM and channel whose channel weights differ from these
        # only in the substitution prior (the first pass, for the spun pass): it ranks each key's
        # candidates once for both, the prior being one constant shift (a spun text's keys are new
        # to the spun pass too, and ranking them was half its time).
        if ranking is not None and (ranking.channel is not channel or ranking.lm is not lm or replace(
                ranking.config.weights, log_p_sub=self.config.weights.log_p_sub) != self.config.weights):
            raise ValueError("a ranking decoder must share the LM, the channel and every channel weight "
                             "but the substitution prior")
        self._ranking = ranking
        # Bounded caches: a long batch sees an unbounded number of word types.
        self._ranked = functools.lru_cache(maxsize=CACHE_KEYS)(self._ranked_uncached)
        self._key_candidates = functools.lru_cache(maxsize=CACHE_KEYS)(self._key_candidates_uncached)
        self._unigram = functools.lru_cache(maxsize=CACHE_KEYS)(self._unigram_uncached)

    # -- lattice -----------------------------------------------------------
    def _ranked_uncached(self, key: tuple[str, ...]) -> list[tuple[str, tuple[str, ...], float, Candidate]]:
        """Every (joined words, words, channel log10 score less the substitution prior, candidate) of
        an observed key, best first."""
        weights = self.config.weights
        function_key = len(key) == 1 and key[0] in FUNCTION_WORDS
        key_unigram = self._unigram(key)
        out = []
        for cand in self.channel.candidates(key):
            words = tuple(cand.original.split())
            # Thesauri link prepositions and pronouns loosely ("at" ~ "by"); for function words
            # only the curated function-word and number sets are trusted.
            if words == key or (function_key and not cand.sources & FUNCTION_WORD_SOURCES):
                continue
            ch = weights.score(cand, len(key)) - weights.log_p_sub - \
                weights.frequency_discount * (self._unigram(words) - key_unigram)
            out.append((" ".join(words), words, ch, cand))
        out.sort(key=lambda x: -x[2])
        return out

    def _key_candidates_uncached(self, key: tuple[str, ...]) -> list[tuple[str, tuple[str, ...], float, Candidate]]:
        """(joined words, words, channel log10 score, candidate) for an observed key, best first, at
        most `max_candidates`."""
        ranked = (self._ranking or self)._ranked(key)
        prior = self.config.weights.log_p_sub
        return [(joined, words, ch + prior, cand) for joined, words, ch, cand in ranked[:self.config.max_candidates]]

    def _span_lengths(self, norms: Sequence[str], start: int, prior: ChannelPrior | None) -> list[int]:
        """Lengths of the observed keys starting at `start`: the channel's, and the prior's own."""
        lengths = self.channel.spans(norms, start)
        if prior is None:
            return lengths
        extra = [n for n in range(1, self.channel.max_len + 1)
                 if start + n <= len(norms) and n not in lengths and prior.known_originals(tuple(norms[start:start + n]))]
        return sorted(lengths + extra) if extra else lengths

    def _prior_candidates(self, key: tuple[str, ...], prior: ChannelPrior,
                          known: Sequence[tuple]) -> list[tuple[str, tuple[str, ...], float, Candidate]]:
        """The prior's originals for `key` that the channel does not offer, as candidates from the
        source "profile" (no thesaurus, no frequency evidence: the prior's bonus carries them)."""
        have = {joined for joined, _, _, _ in known}
        out = []
        for original in prior.known_originals(key):
            words = tuple(original.split())
            if original in have or words == key or not words:
                continue
            cand = Candidate(original, frozenset({"profile"}), 0.0, 0.0, 0.0)
            ch = self.config.weights.score(cand, len(key)) - \
                self.config.weights.frequency_discount * (self._unigram(words) - self._unigram(key))
            out.append((original, words, ch, cand))
        return out

    def candidate_originals(self, key: tuple[str, ...]) -> list[str]:
        """The originals (normalized, space-joined) the decoder considers for an observed key, best first.

        >>> decoder.candidate_originals(("stated",))[:3]          # doctest: +SKIP
        ['said', 'declared', 'told']
        """
        return [joined for joined, _, _, _ in self._key_candidates(key)]

    def scored_candidates(self, key: tuple[str, ...]) -> list[tuple[str, float, Candidate]]:
        """(original, channel log10 score as the decoder weighs it, candidate) for an observed key,
        best first: what the lattice offers at a span of that key.

        >>> decoder.scored_candidates(("mentioned",))[0][0]   # doctest: +SKIP
        'said'
        """
        return [(joined, ch, cand) for joined, _, ch, cand in self._key_candidates(key)]

    def _window(self, norms: Sequence[str], first: int, last: int) -> tuple[str, str, bool, bool]:
        """The observed context a candidate for norms[first:last] is scored in: (left words and a
        space, a space and right words, whether the window starts the sentence, whether it ends it)."""
        w = self.config.window
        left = " ".join(norms[max(0, first - w):first])
        right = " ".join(norms[last:last + w])
        return (left + " " if left else "", " " + right if right else "", first - w < 0, last + w >= len(norms))

    def window_score(self, norms: Sequence[str], first: int, last: int, words: str) -> float:
        """log10 LM score of `words` (normalized, space-joined) in place of norms[first:last], in the
        window of observed context the lattice scores candidates in.

        >>> decoder.window_score(["she", "stated", "it"], 1, 2, "said")   # doctest: +SKIP
        -6.3
        """
        left, right, bos, eos = self._window(norms, first, last)
        return self.lm.sentence_score(left + words + right, bos=bos, eos=eos)

    def _edges(self, norms: Sequence[str], tokens: Sequence[Token],
               evidence: list[TokenEvidence], prior: ChannelPrior | None) -> list[list[_Edge]]:
        """The lattice: identity and prefiltered candidate edges; fills evidence[i].suspicion."""
        cfg = self.config
        n = len(norms)
        score = self.lm.sentence_score
        edges: list[list[_Edge]] = [[_Edge(i, i + 1, (norms[i],), cfg.log_p_keep, None)] for i in range(n)]
        runs = capitalized_runs(tokens) if self.names is not None else {}
        for i in range(n):
            if tokens[i].kind == "punct":
                continue
            scored: list[tuple[float, _Edge]] = []
            alt_mass = 0.0  # sum of 10**(local - identity) over every candidate starting here
            # A capitalized word inside a sentence is likely a name: its GloVe neighbours are
            # other names (Russia ~ Ukraine), never what a spinner's dictionary holds.
            name_like = i > 0 and tokens[i].text[:1].isupper()
            for length in self._span_lengths(norms, i, prior):
                if any(t.kind == "punct" for t in tokens[i:i + length]):
                    break
                key = tuple(norms[i:i + length])
                cands = self._key_candidates(key)
                if prior is not None:
                    cands = cands + self._prior_candidates(key, prior, cands)
                if not cands:
                    continue
                run = runs.get(i)
                if run is not None and i + length > run[1]:
                    run = None  # the span leaves the run of capitalized words
                if run is not None and self.names.known_run(norms[run[0]:run[1]], i - run[0], i + length - run[0]):
                    continue  # never away from a known name
                if name_like and length == 1 and self.names is not None and self.names.is_proper_noun(norms[i]):
                    continue  # nor away from a name by itself ("Asia")
                # Score each candidate in a window of observed context, one string per call.
                left, right, bos, eos = self._window(norms, i, i + length)
                base = score(left + " ".join(key) + right, bos=bos, eos=eos)
                threshold = -cfg.prefilter_slack + cfg.log_p_keep * length + base
                identity = base + cfg.log_p_keep * length
                for joined, words, ch, cand in cands:
                    if name_like and cand.sources <= DISTRIBUTIONAL_SOURCES:
                        continue
                    if run is not None and self._makes_name(norms, run, i, i + length, words):
                        ch += cfg.name_bonus
                    if prior is not None:
                        ch += prior.bonus(key, joined)
                    window = score(left + joined + right, bos=bos, eos=eos)
                    local = window + ch
                    alt_mass += 10 ** min(local - identity, 30.0)
                    evidence[i].n_candidates += 1
                    evidence[i].best_gain = max(evidence[i].best_gain, local - identity)
                    if local > threshold:
                        scored.append((local, _Edge(i, i + length, words, ch, cand)))
            evidence[i].suspicion = alt_mass / (1.0 + alt_mass)
            scored.sort(key=lambda x: -x[0])
            edges[i].extend(e for _, e in scored[:cfg.prefilter_top])
        return edges

    def _makes_name(self, norms: Sequence[str], run: tuple[int, int], first: int, last: int,
                    words: Sequence[str]) -> bool:
        """Whether `words` in place of norms[first:last] make a known name of the capitalized run."""
        a, b = run
        changed = [*norms[a:first], *words, *norms[last:b]]
        return self.names.known_run(changed, first - a, first - a + len(words))

    def _unigram_uncached(self, words: tuple[str, ...]) -> float:
        """log10 P(words) with no outside context: how common the words are anywhere."""
        return self.lm.sentence_score(" ".join(words), bos=False, eos=False)

    # -- search ------------------------------------------------------------
    def _search(self, edges: list[list[_Edge]], n: int) -> list[_Edge]:
        lm = self.lm
        beam = self.config.beam
        # hyps[pos]: LM state -> (score, state, edges so far). Hypotheses that end in the same
        # LM state can never be told apart again: keep the best (recombination).
        hyps: list[dict] = [dict() for _ in range(n + 1)]
        start = lm.begin_state()
        hyps[0][start] = (0.0, start, ())
        for pos in range(n):
            if not hyps[pos]:
                continue
            current = sorted(hyps[pos].values(), key=lambda h: -h[0])[:beam]
            for score, state, path in current:
                for edge in edges[pos]:
                    s, st = score + edge.channel, state
                    for w in edge.words:
                        inc, st = lm.score(st, w)
                        s += inc
                    bucket = hyps[edge.last]
                    old = bucket.get(st)
                    if old is None or old[0] < s:
                        bucket[st] = (s, st, path + (edge,))
        final = [(s + lm.end_score(st), p) for s, st, p in hyps[n].values()]
        return max(final, key=lambda x: x[0])[1] if final else []

    # -- posteriors --------------------------------------------------------
    def _path_words(self, path: Sequence[_Edge]) -> list[str]:
        return [w for e in path for w in e.words]

    def _posteriors(self, path: list[_Edge], edges: list[list[_Edge]],
                    idx: int) -> list[tuple[_Edge, float, float]]:
        """(edge, posterior, LM log10 score of the sentence with it) for every edge that covers
        exactly the span of path[idx], the rest held fixed; the identity is always among them."""
        target = path[idx]
        before = self._path_words(path[:idx])
        after = self._path_words(path[idx + 1:])
        alts = [e for e in edges[target.first] if e.last == target.last]
        if not any(e.cand is None for e in alts):
            # A multi-token span: its identity is the observed tokens kept one by one.
            identity_words = tuple(w for i in range(target.first, target.last) for w in edges[i][0].words)
            alts.append(_Edge(target.first, target.last, identity_words,
                              self.config.log_p_keep * (target.last - target.first), None))
        lm_scores = [self.lm.sentence_score(" ".join([*before, *e.words, *after])) for e in alts]
        scores = [lm + e.channel for lm, e in zip(lm_scores, alts)]
        top = max(scores)
        mass = [10 ** (s - top) for s in scores]
        z = sum(mass)
        return [(e, m / z, lm) for e, m, lm in zip(alts, mass, lm_scores)]

    def _refine(self, path: list[_Edge], edges: list[list[_Edge]]) -> tuple[list[_Edge], dict[int, list]]:
        """The path with each change replaced by the most probable reading of its span, the rest of
        the path held fixed (`_posteriors`), for `config.refine_sweeps` sweeps. The beam keeps a few
        hypotheses per position, ranked on the words so far: a long sentence's beam fills with
        variants of its earlier choices, and a reading that the words after it would prefer is
        dropped ("previous this month" read as "early", "earlier" at 0.89 with the whole sentence).

        Also returns {path index: `_posteriors`} of the changes when the last sweep moved nothing
        (they are then those of the returned path; otherwise empty): `decode` needs them too."""
        path = list(path)
        for _ in range(self.config.refine_sweeps):
            posteriors: dict[int, list] = {}
            moved = False
            for idx, edge in enumerate(path):
                if edge.cand is None:
                    continue
                post = posteriors[idx] = self._posteriors(path, edges, idx)
                best, p_best, _ = max(post, key=lambda x: x[1])
                if best is not edge and p_best > next(p for e, p, _ in post if e is edge):
                    path[idx] = best
                    moved = True
            if not moved:
                return path, posteriors
        return path, {}

    # -- entry point -------------------------------------------------------
    def decode(self, tokens: Sequence[Token], prior: ChannelPrior | None = None) -> SentenceDecoding:
        """The most likely original of one sentence. `prior` adds log10 bonuses to the channel
        score of (observed key, original) pairs: evidence from elsewhere (other sentences of the
        document, a learned spinner profile) that this spinner makes this substitution.

        >>> result = decoder.decode(next(sentences("The minister expressed that the strategy would work.")))
        ... # doctest: +SKIP
        >>> [(c.observed, c.original, round(c.posterior, 2)) for c in result.changes]   # doctest: +SKIP
        [('expressed', 'said', 1.0), ('strategy', 'move', 0.41)]
        """
        tokens = list(tokens)
        norms = [t.norm for t in tokens]
        n = len(tokens)
        n_words = sum(1 for t in tokens if t.kind != "punct")
        if n == 0:
            return SentenceDecoding(tokens, [], 0.0, 0.0, 0)
        evidence = [TokenEvidence() for _ in range(n)]
        per_token = self.lm.token_scores(norms)
        for ev, (lp, ngram), w in zip(evidence, per_token, norms):
            ev.logprob, ev.ngram, ev.unigram = lp, ngram, self._unigram((w,))
        observed_lp = self.lm.sentence_score(" ".join(norms))
        edges = self._edges(norms, tokens, evidence, prior if prior else None)
        if all(len(e) == 1 for e in edges):
            return SentenceDecoding(tokens, [], observed_lp, observed_lp + self.config.log_p_keep * n, n_words,
                                    evidence)
        path, posteriors = self._refine(self._search(edges, n), edges)
        changes = []
        for idx, edge in enumerate(path):
            if edge.cand is None:
                continue
            post = posteriors.get(idx) or self._posteriors(path, edges, idx)
            p_edge, lm_edge = next((p, lm) for e, p, lm in post if e is edge)
            p_id = sum(p for e, p, _ in post if e.cand is None)
            lm_gain = lm_edge - next(lm for e, _, lm in post if e.cand is None)
            observed = tokens[edge.first:edge.last]
            observed_text = _surface(observed)
            changes.append(Change(
                first=edge.first, last=edge.last,
                start=observed[0].start, end=observed[-1].end,
                observed=observed_text,
                original=match_case(observed[0].text, edge.cand.original),
                posterior=p_edge, p_identity=p_id, lm_gain=lm_gain,
                channel_score=edge.channel, sources=tuple(sorted(edge.cand.sources)),
                cosine=edge.cand.cosine, zipf_gain=edge.cand.zipf_original - edge.cand.zipf_observed,
                alternatives=tuple(sorted(((" ".join(e.words), p) for e, p, _ in post if e is not edge),
                                          key=lambda x: -x[1]))[:4],
            ))
        decoded_lp = self.lm.sentence_score(" ".join(self._path_words(path))) + sum(e.channel for e in path)
        return SentenceDecoding(tokens, changes, observed_lp, decoded_lp, n_words, evidence)


def capitalized_runs(tokens: Sequence[Token]) -> dict[int, tuple[int, int]]:
    """For each token inside a run of two or more consecutive capitalized words: the run's
    [start, end) token range.

    >>> from unspin.text import tokenize
    >>> capitalized_runs(tokenize("Staff at Harbor Bank agreed."))
    {2: (2, 4), 3: (2, 4)}
    """
    out: dict[int, tuple[int, int]] = {}
    i, n = 0, len(tokens)
    while i < n:
        j = i
        while j < n and tokens[j].kind == "word" and tokens[j].text[:1].isupper():
            j += 1
        if j - i >= 2:
            for k in range(i, j):
                out[k] = (i, j)
        i = max(j, i + 1)
    return out


def _surface(tokens: Sequence[Token]) -> str:
    out = tokens[0].text
    for prev, tok in zip(tokens, tokens[1:]):
        out += (" " if tok.start > prev.end else "") + tok.text
    return out
