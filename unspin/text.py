"""Tokenization with character offsets, sentence splitting and LM normalization.

Every component (the LM trainer, the channel, the decoder, the spinner) sees text
through this module, so that a word means the same thing everywhere.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator

# Words (letters, with inner apostrophes split off below), numbers (with , and .
# groups), and any other single non-space character as punctuation. Public: the LM trainer
# builds a faster, group-free copy of it, which must match exactly the tokens of `tokenize`.
TOKEN_RE = re.compile(
    r"""
    (?P<number>\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?)
  | (?P<clitic>['’](?:s|re|ve|ll|d|m|t)(?![^\W_]))
  | (?P<word>[^\W\d_]+(?:[.][^\W\d_](?=\.))*)
  | (?P<punct>[^\w\s])
  | (?P<other>_+)
    """,
    re.VERBOSE | re.IGNORECASE,
)

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "‟": '"', "′": "'", "–": "-", "—": "-"})

# Marks that AI rewriters leave: "4, 000" (a thousands group split by a space),
# "U. N." (an abbreviation with spaces), 'said that” the' (a quote flipped to the wrong side).
# A lone pair only: "113, 115, 117" is a list, not a split number.
_SPLIT_THOUSANDS_RE = re.compile(r"(?<!\d, )(?<!\d,)\b(\d{1,3}), (\d{3})\b(?!,? (?:and )?\d)")
_SPACED_ABBREV_RE = re.compile(r"\b([A-Z])\. ([A-Z])\.")
# A closing quote that closes nothing: no opening quote shortly before it (`said that” the`).
_FLIPPED_QUOTE_RE = re.compile(r"\b(?:that|said|says|and|the|of|to)\s?[”\"]\s(?:the|a|an|of|and|to|in)\b")
_OPENING_QUOTE_RE = re.compile(r"“|(?:^|[\s(\[])\"")
_QUOTE_REACH = 80  # characters before a closing quote searched for its opening one

_LAST_WORD_RE = re.compile(r"([\w.]+)\.$")
_SENT_END_RE = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n\s*")

_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "no", "gen", "gov", "sen", "rep", "lt",
                  "col", "sgt", "prof", "inc", "corp", "co", "ltd", "jan", "feb", "mar", "apr", "jun", "jul",
                  "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "e.g", "i.e", "etc", "approx"}


# English function words (pronouns, articles, auxiliaries, prepositions, conjunctions).
FUNCTION_WORDS = frozenset("""
a an the this that these those i me my mine we us our ours you your yours he him his she her hers it its
they them their theirs who whom whose which what whatever whoever is am are was were be been being do does
did doing done have has had having will would shall should can could may might must of in on at by for
with from to into onto upon about as than then so if or and but nor not no yes up down out off over under
there here where when why how all any both each few more most other some such only own same too very just
also now one two ever even again once else s t d ll m re ve o y
""".split())


@dataclass(frozen=True, slots=True)
class Token:
    """One token of the input: its surface text and character span [start, end).

    Made by `tokenize` (and `sentences`, with offsets into the whole text):

    >>> tok = tokenize("He Said")[1]
    >>> tok
    Token(text='Said', start=3, end=7, kind='word')
    >>> tok.norm, tok.is_word
    ('said', True)
    """

    text: str
    start: int
    end: int
    kind: str  # "word", "number", "clitic", "punct"

    @property
    def norm(self) -> str:
        """The form the language model and the channel use: lowercased, quotes unified.

        >>> Token("Don’t", 0, 5, "word").norm
        "don't"
        """
        return normalize_token(self.text)

    @property
    def is_word(self) -> bool:
        """True for a word token (not a number, clitic or punctuation).

        >>> [t.is_word for t in tokenize("It's 4.")]
        [True, False, False, False]
        """
        return self.kind == "word"


def normalize_token(text: str) -> str:
    """A token's LM/channel form (`Token.norm`): lowercased, curly quotes and dashes made ASCII.

    >>> normalize_token("Don’t")
    "don't"
    >>> normalize_token("“Yes”")
    '"yes"'
    """
    return text.translate(_QUOTES).lower()


def tokenize(text: str) -> list[Token]:
    """Split text into tokens with offsets into `text` (no characters are rewritten).

    >>> [(t.text, t.kind) for t in tokenize("Smith's 4,000 cats.")]
    [('Smith', 'word'), ("'s", 'clitic'), ('4,000', 'number'), ('cats', 'word'), ('.', 'punct')]
    """
    tokens = []
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup or "punct"
        if kind == "other":
            kind = "punct"
        tokens.append(Token(m.group(), m.start(), m.end(), kind))
    return tokens


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of sentences; a line break always ends a sentence.

    >>> text = "Mr. Smith arrived. He left!\\nThen rain"
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Mr. Smith arrived.', 'He left!', 'Then rain']
    """
    spans = []
    start = 0
    for m in _SENT_END_RE.finditer(text):
        end = m.start()
        # Do not split after a known abbreviation ("Mr. Smith", "U.S. forces").
        # Only the last word before the break matters; looking at a bounded tail keeps the
        # split linear when many abbreviations in a row ("Mr. Mr. ...") keep `start` in place.
        prev_word = _LAST_WORD_RE.search(text, max(start, end - 64), end)
        if prev_word and "\n" not in m.group():
            word = prev_word.group(1).lower().rstrip(".")
            # Known abbreviations and initials ("J. Smith") do not end a sentence.
            if word in _ABBREVIATIONS or len(word) == 1 and word.isalpha():
                continue
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def sentences(text: str) -> Iterator[list[Token]]:
    """Tokens grouped by sentence (over-long ones cut by `split_long`), offsets into the whole text.

    >>> [[t.text for t in s] for s in sentences("It rained. Dr. Lee left.")]
    [['It', 'rained', '.'], ['Dr', '.', 'Lee', 'left', '.']]
    >>> list(sentences("It rained. Dr. Lee left."))[1][0].start
    11
    """
    for start, end in sentence_spans(text):
        toks = tokenize(text[start:end])
        yield from split_long([Token(t.text, t.start + start, t.end + start, t.kind) for t in toks])


def split_long(tokens: list[Token], max_tokens: int = 80) -> list[list[Token]]:
    """A sentence cut into pieces of at most `max_tokens`, after punctuation where possible:
    text without sentence ends (lists, logs, one-line dumps) must not make one huge sentence,
    whose decoding cost grows with the square of its length.

    >>> [len(piece) for piece in split_long(tokenize("a, " * 60))]    # 120 tokens
    [80, 40]
    """
    pieces = []
    while len(tokens) > max_tokens:
        cut = max((i + 1 for i in range(max_tokens // 2, max_tokens) if tokens[i].kind == "punct"),
                  default=max_tokens)
        pieces.append(tokens[:cut])
        tokens = tokens[cut:]
    if tokens:
        pieces.append(tokens)
    return pieces


def lm_tokens(text: str) -> list[str]:
    """Normalized tokens of one sentence, as the language model was trained on them.

    >>> lm_tokens("The U. N. sent 4, 000 “troops”.")
    ['the', 'u.n', '.', 'sent', '4,000', '"', 'troops', '"', '.']
    """
    # `tokenize`'s tokens without making Token objects: a scan's family vote calls this at every place it weighs
    return [normalize_token(m.group()) for m in TOKEN_RE.finditer(repair_rewriter_marks(text))]


def lm_sentences(text: str) -> Iterator[str]:
    """Space-joined normalized sentences of a paragraph: the LM training format.

    >>> list(lm_sentences("It rained. The U. N. said so."))
    ['it rained .', 'the u.n . said so .']
    """
    text = repair_rewriter_marks(text)
    for start, end in sentence_spans(text):
        toks = [t.norm for t in tokenize(text[start:end])]
        if toks:
            yield " ".join(toks)


def repair_rewriter_marks(text: str) -> str:
    """Undo the formatting marks that AI rewriters leave ("4, 000" -> "4,000", "U. N." -> "U.N.").

    >>> repair_rewriter_marks("The U. N. sent 4, 000 troops.")
    'The U.N. sent 4,000 troops.'
    """
    text = _SPLIT_THOUSANDS_RE.sub(r"\1,\2", text)
    prev = None
    while prev != text:
        prev = text
        text = _SPACED_ABBREV_RE.sub(r"\1.\2.", text)
    return text


def count_rewriter_marks(text: str) -> dict[str, int]:
    """How many of each AI-rewriter mark a text carries (a detection feature).

    >>> count_rewriter_marks('The U. N. said that” the 4, 000 troops left.')
    {'split_thousands': 1, 'spaced_abbrev': 1, 'flipped_quote': 1}
    """
    counts = dict.fromkeys(REWRITER_MARK_NAMES, 0)
    for _start, _end, kind in find_rewriter_marks(text):
        counts[kind] += 1
    return counts


REWRITER_MARK_NAMES = {"split_thousands": "number split by a space (4, 000)",
                       "spaced_abbrev": "abbreviation split by a space (U. N.)",
                       "flipped_quote": "quotation mark on the wrong side of a word"}


def find_rewriter_marks(text: str) -> list[tuple[int, int, str]]:
    """Where the AI-rewriter marks of `count_rewriter_marks` are: (start, end, kind), in text order
    (`REWRITER_MARK_NAMES` says what each kind is, for people). A person's initials ("J. K. Rowling")
    are spaced letters too, and no mark.

    >>> find_rewriter_marks("The U. N. sent 4, 000 troops.")
    [(4, 9, 'spaced_abbrev'), (15, 21, 'split_thousands')]
    >>> find_rewriter_marks("A. B. Okonkwo wrote it.")
    []
    """
    found = [(m.start(), m.end(), kind) for kind, regex in (("split_thousands", _SPLIT_THOUSANDS_RE),
                                                           ("spaced_abbrev", _SPACED_ABBREV_RE),
                                                           ("flipped_quote", _FLIPPED_QUOTE_RE))
             for m in regex.finditer(text)
             if _is_mark(kind, m, text)]
    return sorted(found)


# Spaced abbreviations that name places and bodies ("U. S. Senate"), never a person's initials.
_PLACE_ABBREVIATIONS = {"us", "uk", "un", "eu"}
_INITIALS_TAIL_RE = re.compile(r"(?:\s[A-Z]\.)*\s+[A-Z][a-z]")


def _is_mark(kind: str, match: re.Match, text: str) -> bool:
    """Whether a match of a mark's pattern is one: not a person's initials ("H. W. Lee": spaced
    capitals before a capitalized name), not a quotation closing an opening quote nearby."""
    if kind == "spaced_abbrev":
        if (match.group(1) + match.group(2)).lower() in _PLACE_ABBREVIATIONS:
            return True
        return _INITIALS_TAIL_RE.match(text, match.end()) is None
    if kind == "flipped_quote":
        return _OPENING_QUOTE_RE.search(text, max(match.start() - _QUOTE_REACH, 0), match.start()) is None
    return True


def overlaps(start: int, end: int, other_start: int, other_end: int) -> bool:
    """Whether the character spans [start, end) and [other_start, other_end) share a character.

    >>> overlaps(0, 4, 3, 9), overlaps(0, 4, 4, 9)
    (True, False)
    """
    return start < other_end and other_start < end


def match_case(template: str, word: str) -> str:
    """Carry the case pattern of `template` over to `word` (first letter, or all caps).

    >>> match_case("Stated", "said"), match_case("NASA", "agency"), match_case("stated", "said")
    ('Said', 'AGENCY', 'said')
    """
    if not template or not word:
        return word
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word


def is_mostly_text(data: str) -> bool:
    """False for binary junk decoded by accident: 1% or more control characters (in the first 20,000).

    >>> is_mostly_text("plain text\\n"), is_mostly_text("\\x00\\x01\\x02abc")
    (True, False)
    """
    if not data:
        return True
    sample = data[:20000]
    bad = sum(1 for ch in sample if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\r\t\f")
    return bad / len(sample) < 0.01
