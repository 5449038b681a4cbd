"""The `unspin` command line: a thin layer over the library functions."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .inputs import MAX_DOCUMENT_BYTES, InputError, map_jsonl, read_document, run_command
from .lm import ModelMissing


def _engine(args):
    from .detect import Engine
    from .lexicon import Channel

    channel = Channel.load(args.channel) if getattr(args, "channel", None) else None
    return Engine.load(lm_path=getattr(args, "lm", None), channel=channel)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-confidence", type=float, default=0.5,
                   help="apply a suggestion only at or above this confidence (default 0.5)")
    p.add_argument("--max-bytes", type=int, default=MAX_DOCUMENT_BYTES,
                   help=f"refuse single documents larger than this (default {MAX_DOCUMENT_BYTES:,})")
    p.add_argument("--lm", help="KenLM model to use instead of the shipped one")
    p.add_argument("--channel", help="channel file to use instead of the shipped one")


def cmd_check(args) -> int:
    from .report import render_html, render_json, render_text

    engine = _engine(args)
    if args.jsonl:
        return _check_jsonl(engine, args)
    if not args.file:
        raise InputError("give a FILE (or - for stdin), or --jsonl IN.jsonl")
    text = read_document(args.file, args.max_bytes)
    result = engine.check(text, args.min_confidence)
    if args.format == "json":
        out = render_json(result, source=args.file) + "\n"
    elif args.format == "html":
        out = render_html(result, args.file, text)
    else:
        out = render_text(result, args.file, text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0


def _check_jsonl(engine, args) -> int:
    map_jsonl(args.jsonl, args.output, lambda text: engine.check(text, args.min_confidence).to_dict(),
              args.max_bytes)
    return 0


def cmd_restore(args) -> int:
    engine = _engine(args)
    text = read_document(args.file, args.max_bytes)
    result = engine.restore(text, args.min_confidence)
    sys.stdout.write(result.text if result.text.endswith("\n") or not result.text else result.text + "\n")
    if args.changes:
        for s in result.changes:
            print(f"{s.start}-{s.end}\t{s.text}\t{s.suggestion}\t{s.confidence:.2f}", file=sys.stderr)
    return 0


def _run_module(module: str, argv: list[str]) -> int:
    """Hand the arguments to another module's `main` (its own --help applies)."""
    import importlib

    return importlib.import_module(f"unspin.{module}").main(argv) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unspin", description="Catch machine-spun text and undo it.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="how likely a text is spun, its suspicious spans and their originals")
    p.add_argument("file", nargs="?", help="a .txt, .md or .html file, or - for stdin")
    p.add_argument("--jsonl", help="batch: rows {\"id\", \"text\"}; one JSON row out per row in")
    p.add_argument("--format", choices=("text", "json", "html"), default="text")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    _add_common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("restore", help="print the likely original wording")
    p.add_argument("file", help="a .txt, .md or .html file, or - for stdin")
    p.add_argument("--changes", action="store_true", help="list applied changes on stderr")
    _add_common(p)
    p.set_defaults(func=cmd_restore)

    for name, help_ in (
        ("index", "add, remove and count reference documents in a trace index (add, remove, stats)"),
        ("trace", "find the original source of a spun copy in an index, with an alignment"),
        ("spin", "spin text with the synthetic spinner (for evaluation)"),
        ("bench", "run the benchmarks and write results under bench/ (core, all, trace)"),
        ("train-lm", "train the n-gram language model with KenLM's lmplz"),
        ("build-channel", "build the substitution channel from the lexical resources"),
        ("calibrate", "fit the spin-probability and confidence calibration"),
    ):
        sub.add_parser(name, help=help_, add_help=False)  # listed in --help; main() forwards them
    return parser


# Subcommands that hand all their arguments to another module's own parser.
_FORWARDED = {"spin": ("spin",), "bench": ("bench",), "train-lm": ("train_lm",),
              "build-channel": ("lexicon", "build"), "calibrate": ("calibrate",),
              "index": ("index",), "trace": ("trace",)}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def command() -> int:
        if argv[:2] == ["bench", "trace"]:
            return _run_module("bench_trace", argv[2:])
        if argv and argv[0] in _FORWARDED:
            # Forwarded by hand: argparse sub-parsers cannot pass on "--out X" untouched.
            module, *prefix = _FORWARDED[argv[0]]
            return _run_module(module, [*prefix, *argv[1:]])
        args = build_parser().parse_args(argv)
        return args.func(args)

    try:
        return run_command("unspin", command, (InputError, ModelMissing))
    except Exception as err:  # the last resort: a clear message, never a traceback
        print(f"unspin: internal error: {type(err).__name__}: {err} (please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
