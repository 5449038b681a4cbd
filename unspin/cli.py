"""The `unspin` command line: one argparse tree, a thin layer over the library.

Exit status: 0 done; 1 a checked text reached the `--fail-on` verdict; 2 bad input or
usage (one line on stderr, never a traceback); 70 an internal error; 130 interrupted.

    unspin check article.txt
    unspin check --jsonl rows.jsonl -o results.jsonl --fail-on likely
    unspin trace --index refs.sqlite copy.html --format html -o alignment.html
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
from contextlib import nullcontext
from typing import Callable, Sequence

from . import __version__
from .build import (bench_core, bench_neural, bench_reliability, bench_scan, bench_serve, bench_trace, calibrate,
                    channel as channel_build, coverage, names as names_build, neural_eval, spinner, train_lm)
from .detect import (DEFAULT_MIN_CONFIDENCE, DEFAULT_THRESHOLDS, LIKELY_SPUN, SCORERS, SPUN, Engine,
                     VerdictThresholds)
from .index import Index, add_inputs, check_index, check_index_path
from .inputs import (MAX_DOCUMENT_BYTES, BadRow, InputError, atomic_output, check_output_path, html_choice,
                     iter_input_docs, load_document, map_jsonl, read_bytes_text)
from .lexicon import Channel, norm_phrase
from .neural import NeuralUnavailable
from .profile import ProfileWeights, SpinnerProfile
from .lm import ModelMissing
from .report import render_alignment_html, render_alignment_text, render_json
from .runtime import tune_garbage_collector
from . import scan as scan_mod
from .trace import (MIN_COVERAGE, compare, restorations_from_sources, source_restorations, source_text,
                    trace)

# Per-document time budget of the command line: a 2 MB document of ordinary prose takes about two
# minutes on the 4-gram path (bench/reliability.md), so only pathological input reaches it.
DEFAULT_TIME_BUDGET_S = 300.0
# Exit status of a bug in unspin (sysexits' EX_SOFTWARE), apart from 1 (--fail-on) and 2 (user error).
INTERNAL_ERROR = 70
# `--fail-on` choices and the verdicts that reach each.
FAIL_ON = {"spun": {SPUN}, "likely": {SPUN, LIKELY_SPUN}}


# ---- argument types: out-of-range values are usage errors (exit 2) -----------------------
def _number(value: str, cast: Callable[[str], float], ok: Callable[[float], bool], kind: str, rule: str):
    try:
        x = cast(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not {kind}") from None
    if not ok(x):
        raise argparse.ArgumentTypeError(f"{value} {rule}")
    return x


def probability(value: str) -> float:
    """A number from 0 to 1."""
    return _number(value, float, lambda x: 0.0 <= x <= 1.0, "a number", "is not between 0 and 1")


def seconds(value: str) -> float:
    """A number >= 0 (0 meaning: no limit)."""
    return _number(value, float, lambda x: x >= 0, "a number", "must be 0 or more")


def positive_int(value: str) -> int:
    """A whole number >= 1."""
    return _number(value, int, lambda x: x >= 1, "a whole number", "must be at least 1")


# ---- progress ----------------------------------------------------------------------------
def progress_bar(args: argparse.Namespace, desc: str, unit: str, total: int | None = None):
    """A tqdm bar on stderr, or a no-op: shown when stderr is a terminal, or with --progress."""
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    if not enabled:
        return nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def _tick(bar) -> Callable[..., None] | None:
    return None if bar is None else (lambda *_: bar.update(1))


# ---- check / restore ---------------------------------------------------------------------
def _engine(args: argparse.Namespace) -> Engine:
    thresholds = DEFAULT_THRESHOLDS
    if hasattr(args, "spun_at"):  # commands that report verdicts
        try:
            thresholds = VerdictThresholds(spun=args.spun_at, likely=args.likely_at, possibly=args.possibly_at)
        except ValueError as err:
            raise InputError(str(err)) from None
    channel = Channel.load(args.channel) if args.channel else None
    profile = None
    if getattr(args, "profile", None):
        try:
            profile = SpinnerProfile.load(args.profile)
        except ValueError as err:
            raise InputError(str(err)) from None
    consistency = ProfileWeights() if getattr(args, "consistency", True) else None
    return Engine.load(lm_path=args.lm, channel=channel, thresholds=thresholds, consistency=consistency,
                       profile=profile, scorer=getattr(args, "scorer", "ngram"),
                       time_budget_s=getattr(args, "time_budget", None) or None)


def cmd_learn(args: argparse.Namespace) -> int:
    """`unspin learn`: a spinner profile from many texts of one source, no originals needed (with
    --index, the texts whose source is indexed teach exact pairs)."""
    check_output_path(args.output, inputs=args.inputs)
    for path in args.inputs:
        iter_input_docs(path, check_only=True)
    engine = _engine(args)
    texts = [doc["text"] for path in args.inputs
             for doc in iter_input_docs(path, max_bytes=args.max_bytes, on_bad=_bad_row_reporter("learn"))]
    if not texts:
        raise InputError("no texts to learn from")
    with contextlib.ExitStack() as stack, \
            progress_bar(args, "learn", "doc", total=len(texts) * args.iterations) as bar:
        profile = engine.learn_profile(texts, iterations=args.iterations,
                                       progress=None if bar is None else (lambda n: bar.update(n - bar.n)),
                                       sources=_source_index(args, stack))
    with atomic_output(args.output) as f:
        json.dump(profile.to_dict(), f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {args.output}: {len(profile):,} pairs from {len(texts):,} texts; strongest:", file=sys.stderr)
    for observed, original, mass in profile.top_pairs(args.show):
        share = profile.reading_share(tuple(observed.split()), original)
        seen = f"  ({share:.0%} of its {profile.key_counts[tuple(observed.split())]:,.0f})" if share is not None else ""
        print(f"  {observed} -> {original}  {mass:.1f}{seen}", file=sys.stderr)
    return 0


def _bad_row_reporter(command: str, bar=None) -> Callable[[BadRow], None]:
    """One line on stderr per skipped bad row (above the progress bar, when one is shown)."""
    def report(bad: BadRow) -> None:
        message = f"unspin {command}: {bad.where}: {bad.reason}; skipped"
        if bar is not None:
            bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)
    return report


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output:
        with atomic_output(args.output) as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _source_index(args: argparse.Namespace, stack: contextlib.ExitStack):
    """The `sources` hook of `Engine.check` for --index (None without it)."""
    if not getattr(args, "index", None):
        return None
    idx = stack.enter_context(Index(args.index, create=False))
    return lambda text: source_restorations(idx, text)


def cmd_check(args: argparse.Namespace) -> int:
    _require_one_input(args, "--jsonl IN.jsonl")
    check_output_path(args.output, inputs=[args.file, args.jsonl, args.index])
    with contextlib.ExitStack() as stack:
        sources = _source_index(args, stack)
        return _check_with(args, _engine(args), sources)


def _check_with(args: argparse.Namespace, engine: Engine, sources) -> int:
    failing = FAIL_ON.get(args.fail_on, set())
    if args.jsonl:
        reached = False

        def handle(text: str) -> dict:
            nonlocal reached
            result = engine.check(text, args.min_confidence, html=args.html, sources=sources)
            reached |= result.verdict in failing
            return result.to_dict()

        with progress_bar(args, "check", "doc") as bar:
            # Rows reach the engine as given: it reduces HTML and says so in each result.
            map_jsonl(args.jsonl, args.output, handle, args.max_bytes, html=False, on_row=_tick(bar))
        return 1 if reached else 0
    raw = read_bytes_text(args.file, args.max_bytes)
    result = engine.check(raw, args.min_confidence, html=html_choice(args.file, args.html), sources=sources)
    if args.format == "json":
        out = render_json(result, file=args.file) + "\n"
    elif args.format == "html":
        out = result.to_html(args.file, engine.thresholds, args.min_confidence)
    else:
        out = result.to_text(args.file, args.min_confidence)
    _write(args, out)
    return 1 if result.verdict in failing else 0


def cmd_restore(args: argparse.Namespace) -> int:
    check_output_path(args.output, inputs=[args.file, args.index])
    with contextlib.ExitStack() as stack:
        sources = _source_index(args, stack)
        engine = _engine(args)
        raw = read_bytes_text(args.file, args.max_bytes)
        result = engine.restore(raw, args.min_confidence, html=html_choice(args.file, args.html), sources=sources)
    _write(args, result.text if result.text.endswith("\n") or not result.text else result.text + "\n")
    if args.changes:
        for s in result.changes:
            origin = s.evidence.get("source", "source") if s.evidence.get("origin") == "source" else "decoder"
            print(f"{s.start}-{s.end}\t{s.text}\t{s.suggestion}\t{s.confidence:.2f}\t{origin}", file=sys.stderr)
    return 0


def _require_one_input(args: argparse.Namespace, batch_flag: str) -> None:
    if not args.jsonl and not args.file:
        raise InputError(f"give a FILE (or - for stdin), or {batch_flag}")
    if args.jsonl and args.file:
        raise InputError(f"give either a FILE or {batch_flag.split()[0]}, not both")


# ---- trace and the index -----------------------------------------------------------------
def cmd_trace(args: argparse.Namespace) -> int:
    _require_one_input(args, "--jsonl Q.jsonl")
    check_output_path(args.output, inputs=[args.file, args.jsonl, args.index])
    with Index(args.index, create=False) as idx:
        if args.jsonl:
            with progress_bar(args, "trace", "doc") as bar:
                map_jsonl(args.jsonl, args.output,
                          lambda text: {"matches": [m.to_dict() for m in trace(
                              idx, text, top=args.top, min_coverage=args.min_coverage)]},
                          args.max_bytes, html=args.html, on_row=_tick(bar))
            return 0
        doc = load_document(args.file, args.max_bytes, html=args.html)
        matches = trace(idx, doc.text, top=args.top, min_coverage=args.min_coverage)
        if args.format == "json":
            out = json.dumps({"file": args.file, "input_format": doc.format,
                              "matches": [m.to_dict(alignment=True) for m in matches]}, ensure_ascii=False) + "\n"
        elif args.format == "html":
            sources = {m.doc_id: source_text(idx, m.doc_id) for m in matches}
            out = render_alignment_html(matches, title=f"unspin trace: {args.file}", query_text=doc.text,
                                        source_texts=sources,
                                        restorations=restorations_from_sources(doc.text, matches, sources))
        else:
            out = "".join(render_alignment_text(m, changes_only=True) + "\n" for m in matches) \
                or "no plausible source found\n"
        _write(args, out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """`unspin compare A B`: the alignment of copy A with source B, no index."""
    check_output_path(args.output, inputs=[args.copy, args.source])
    if args.copy == "-" and args.source == "-":
        raise InputError("stdin (-) can be read only once; give - once")
    copy = load_document(args.copy, args.max_bytes, html=args.html)
    source = load_document(args.source, args.max_bytes, html=args.html)
    match = compare(copy.text, source.text, Channel.load(args.channel) if args.channel else None,
                    source_id=args.source)
    if args.format == "json":
        out = json.dumps({"copy": args.copy, "source": args.source, **match.to_dict(alignment=True)},
                         ensure_ascii=False) + "\n"
    elif args.format == "html":
        out = render_alignment_html([match], title=f"unspin compare: {args.copy} / {args.source}",
                                    query_text=copy.text, source_texts={args.source: source.text},
                                    restorations=restorations_from_sources(copy.text, [match],
                                                                           {args.source: source.text}))
    else:
        out = render_alignment_text(match, changes_only=True)
    _write(args, out)
    return 0


# ---- scan --------------------------------------------------------------------------------
def _absolute(path: str | None) -> str | None:
    """A model or index path as workers need it (a cluster's workers may run in another folder)."""
    return os.path.abspath(path) if path else None


def cmd_scan(args: argparse.Namespace) -> int:
    """`unspin scan`: a whole corpus into a Parquet dataset folder, with spin families; --report
    also renders its HTML summary (alone, without INPUT: from a finished scan in --out)."""
    if not args.inputs and not args.report:
        raise InputError("give INPUT files or folders to scan (or --report to render a finished scan)")
    if args.inputs:
        scan_mod.check_inputs(args.inputs, args.id_column, args.text_column)
        if args.index:
            with Index(args.index, create=False):  # a missing or damaged index: a clear error before work
                pass
        try:
            thresholds = VerdictThresholds(spun=args.spun_at, likely=args.likely_at, possibly=args.possibly_at)
        except ValueError as err:
            raise InputError(str(err)) from None
        spec = scan_mod.ScanSpec(lm=_absolute(args.lm), channel=_absolute(args.channel), index=_absolute(args.index),
                                 thresholds=thresholds,
                                 min_confidence=args.min_confidence, time_budget_s=args.time_budget or None,
                                 top_spans=args.top_spans, max_family=args.max_family)
        total = None if args.scheduler else scan_mod.count_rows(args.inputs)
        with progress_bar(args, "scan", "doc", total=total) as bar:
            summary = scan_mod.scan(
                args.inputs, args.out, spec, workers=args.workers, scheduler=args.scheduler,
                id_column=args.id_column, text_column=args.text_column, max_bytes=args.max_bytes,
                partition_size=args.partition_size, families=args.families,
                progress=None if bar is None else (lambda n: bar.update(n - bar.n)),
                log=(lambda msg: bar.write(f"unspin scan: {msg}", file=sys.stderr)) if bar is not None else None)
        print(summary.to_text(), file=sys.stderr)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.report:
        path = scan_mod.write_report(args.out, None if args.report is True else args.report)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    """`unspin index add`: bad rows are reported on stderr and skipped (--strict: the first one
    stops the run, nothing written, exit 2); one JSON summary line on stdout."""
    with progress_bar(args, "index", "doc") as bar:
        shown = 0

        def on_batch(n_written: int) -> None:
            nonlocal shown
            if bar is not None:
                bar.update(n_written - shown)
                shown = n_written

        summary = add_inputs(args.index, args.inputs, strict=args.strict, id_column=args.id_column,
                             text_column=args.text_column, max_bytes=args.max_bytes,
                             on_bad=_bad_row_reporter("index add", bar),
                             progress=on_batch, workers=args.workers, bulk=args.bulk)
    print(json.dumps(summary.to_dict()))
    if summary.skipped_empty:
        print(f"unspin index add: skipped {summary.skipped_empty:,} rows with empty text", file=sys.stderr)
    if summary.skipped_bad:
        print(f"unspin index add: skipped {summary.skipped_bad:,} bad rows (listed above; --strict stops at "
              f"the first)", file=sys.stderr)
    return 0


def cmd_index_stats(args: argparse.Namespace) -> int:
    with Index(args.index, create=False) as idx:
        print(json.dumps(idx.stats()))
    return 0


def cmd_index_check(args: argparse.Namespace) -> int:
    """`unspin index check [--repair]`: one JSON report on stdout; exit 0 when the index is sound
    (or was repaired), 2 when problems remain (a one-line summary on stderr)."""
    check_index_path(args.index, create=False)
    report = check_index(args.index, repair=args.repair)
    print(json.dumps(report, ensure_ascii=False))
    if not report["ok"]:
        n = len(report["problems"])
        hint = "" if args.repair else "; try --repair"
        print(f"unspin index check: {args.index}: {n} problem{'s' * (n != 1)} (listed in the JSON report){hint}",
              file=sys.stderr)
        return 2
    return 0


def cmd_index_remove(args: argparse.Namespace) -> int:
    with Index(args.index, create=False) as idx:
        n = idx.remove(args.ids)
        print(json.dumps({"removed": n, "documents": len(idx)}))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`unspin serve`: the HTTP API and the web page (FastAPI + uvicorn); models load once per worker."""
    try:
        import uvicorn

        from . import serve
    except ImportError as err:
        raise InputError(f"serving needs FastAPI and uvicorn ({err.name} is missing): "
                         f"pip install 'unspin[serve]'") from None
    if args.index is not None:
        check_index_path(args.index, create=False)
    if not args.queue_timeout > 0:
        raise InputError("--queue-timeout must be more than 0 seconds")
    token = args.token or os.environ.get(serve.TOKEN_ENV) or None
    options = serve.ServeOptions(index=args.index, lm=args.lm, channel=args.channel,
                                 time_budget_s=args.time_budget or None, max_body_bytes=args.max_bytes,
                                 max_pending=args.max_pending, queue_timeout_s=args.queue_timeout)
    print(f"unspin serve: http://{args.host}:{args.port}/ ({args.workers} worker{'s' * (args.workers != 1)}"
          f"{', index ' + args.index if args.index else ''}; index writes "
          f"{'need the token' if token else 'disabled (no token)'})", file=sys.stderr)
    # Beyond the app's own shedding (max_pending per worker), uvicorn refuses connections past this.
    limit = args.max_pending * args.workers * 4
    if args.workers == 1:
        uvicorn.run(options.build(token), host=args.host, port=args.port, limit_concurrency=limit,
                    log_level=args.log_level)
    else:  # each worker process builds its own app (and loads the models once) from the environment
        os.environ[serve.OPTIONS_ENV] = options.to_json()
        if token:
            os.environ[serve.TOKEN_ENV] = token
        uvicorn.run("unspin.serve:app_from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, limit_concurrency=limit, log_level=args.log_level)
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    channel = Channel.load(args.channel) if args.channel else Channel.load_default()
    key = tuple(norm_phrase(" ".join(args.phrase)).split())
    candidates = channel.candidates(key)
    if not candidates:
        print(f"no candidates for {' '.join(key)!r}", file=sys.stderr)
    for c in candidates:
        print(f"{c.original:30s} {','.join(sorted(c.sources)):40s} cos={c.cosine:.2f} "
              f"zipf observed={c.zipf_observed:.2f} original={c.zipf_original:.2f}")
    return 0


# ---- the parser tree ---------------------------------------------------------------------
def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-bytes", type=positive_int, default=MAX_DOCUMENT_BYTES,
                   help=f"refuse single documents larger than this many bytes (default {MAX_DOCUMENT_BYTES:,})")
    p.add_argument("--html", action=argparse.BooleanOptionalAction, default=None,
                   help="treat the input as HTML and check its main text (--no-html: as plain text); "
                        "default: by file extension (.html, .htm), or for stdin and JSONL rows when the "
                        "text is clearly an HTML document")
    p.add_argument("-o", "--output", help="write the result here instead of stdout (written in full or not at all)")


def _add_source_index_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", help="a trace index (`unspin index add`): the parts of a text that a source in it "
                   "explains are restored from the source's wording, the rest by the decoder")


def _add_verdict_options(p: argparse.ArgumentParser) -> None:
    """--min-confidence and the verdict thresholds (check, restore, trace's engine, scan)."""
    p.add_argument("--min-confidence", type=probability, default=DEFAULT_MIN_CONFIDENCE,
                   help=f"apply a suggestion only at or above this confidence, 0-1 (default {DEFAULT_MIN_CONFIDENCE})")
    t = DEFAULT_THRESHOLDS
    p.add_argument("--spun-at", type=probability, default=t.spun,
                   help=f"spin probability from which the verdict is 'spun' (default {t.spun})")
    p.add_argument("--likely-at", type=probability, default=t.likely,
                   help=f"spin probability from which the verdict is 'likely spun' (default {t.likely})")
    p.add_argument("--possibly-at", type=probability, default=t.possibly,
                   help=f"spin probability from which the verdict is 'possibly spun' (default {t.possibly})")


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    _add_verdict_options(p)
    p.add_argument("--lm", help="KenLM model file to use instead of the shipped one")
    p.add_argument("--channel", help="channel file (unspin build-channel) to use instead of the shipped one")
    p.add_argument("--profile", help="a spinner profile (unspin learn) of the source these texts come from: "
                   "its learned substitutions weigh in")
    p.add_argument("--consistency", action=argparse.BooleanOptionalAction, default=True,
                   help="pool the evidence of a document's sentences when restoring a text that reads as spun "
                        "(one spinner, one dictionary; default on, --no-consistency: each sentence alone)")
    p.add_argument("--time-budget", type=seconds, default=DEFAULT_TIME_BUDGET_S, metavar="SECONDS",
                   help=f"seconds one document may take; past it the rest of the text is left unjudged and the "
                        f"result's warnings say so (default {DEFAULT_TIME_BUDGET_S:g}; 0: no limit)")
    p.add_argument("--scorer", choices=SCORERS, default="ngram",
                   help="ngram (default): the fast 4-gram path; neural: a small transformer LM re-decides the "
                        "uncertain spans in full context (about 80x slower; needs pip install 'unspin[neural]')")
    _add_input_options(p)


def _add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show progress on stderr (default: only when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unspin", description="Catch machine-spun text and undo it.",
        epilog="Exit status: 0 done, 1 a text reached the --fail-on verdict, 2 bad input or usage, "
               "70 internal error.")
    parser.add_argument("--version", action="version", version=f"unspin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="how likely a text is spun, its suspicious spans and their originals",
                       description="How likely a text is spun, its suspicious spans and their likely originals.")
    p.add_argument("file", nargs="?", help="a .txt, .md or .html file, or - for stdin")
    p.add_argument("--jsonl", help="batch: read rows {\"id\", \"text\"} from this file (- for stdin); "
                   "one JSON row out per row in, in order")
    p.add_argument("--format", choices=("text", "json", "html"), default="text",
                   help="report format for a single file (default text; --jsonl always writes JSON rows)")
    p.add_argument("--fail-on", choices=tuple(FAIL_ON),
                   help="exit with status 1 when a checked text reaches this verdict "
                        "('likely' also counts 'spun'); for screening submissions")
    _add_source_index_option(p)
    _add_engine_options(p)
    _add_progress_option(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("restore", help="print the likely original wording",
                       description="Print the likely original wording: confident suggestions applied.")
    p.add_argument("file", help="a .txt, .md or .html file, or - for stdin")
    p.add_argument("--changes", action="store_true", help="list the applied changes on stderr "
                   "(start-end, observed, original, confidence, origin: source ID or decoder)")
    _add_source_index_option(p)
    _add_engine_options(p)
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("trace", help="find the original source of a spun copy in an index, with an alignment",
                       description="Find the original source of a spun copy in an index of reference documents.")
    p.add_argument("file", nargs="?", help="a .txt, .md or .html file, or - for stdin")
    p.add_argument("--index", required=True, help="the SQLite index file (built with `unspin index add`)")
    p.add_argument("--top", type=positive_int, default=5, help="report at most this many sources (default 5)")
    p.add_argument("--min-coverage", type=probability, default=MIN_COVERAGE,
                   help="a source must explain at least this share of the query's words, 0-1 "
                        f"(default {MIN_COVERAGE}), or a part of the page of at least 30 words")
    p.add_argument("--format", choices=("text", "json", "html"), default="text",
                   help="report format for a single file (default text)")
    p.add_argument("--jsonl", help="batch: rows {\"id\", \"text\"}; one row {\"id\", \"matches\"} out per row in")
    _add_input_options(p)
    _add_progress_option(p)
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("compare", help="align a suspected copy with a given source (no index)",
                       description="Align a suspected copy A with a source B: the parts of A that B explains "
                                   "(verbatim, spun or rewritten) and every substitution, no index needed.")
    p.add_argument("copy", help="the suspected copy: a .txt, .md or .html file, or - for stdin")
    p.add_argument("source", help="the source: a .txt, .md or .html file, or - for stdin")
    p.add_argument("--format", choices=("text", "json", "html"), default="text", help="report format (default text)")
    p.add_argument("--channel", help="a channel file (.npz) other than the shipped one")
    _add_input_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("index", help="add, remove and count reference documents in a trace index",
                       description="Build and maintain a trace index (one SQLite file).")
    isub = p.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    q = isub.add_parser("add", help="add or replace documents (by id)",
                        description="Add or replace documents (by id); written in transactions of 500. "
                                    "A bad row is reported on stderr (FILE:ROW: why) and skipped; the "
                                    "JSON summary on stdout counts them as skipped_bad. Row numbers are "
                                    "line numbers (JSONL, CSV) or record numbers (Parquet).")
    q.add_argument("--index", required=True, help="the SQLite index file (created if missing; a failed run "
                   "leaves none behind)")
    q.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL rows {id, text, ...} (.jsonl, .ndjson, "
                   ".jsonl.gz; - for stdin), CSV with a header row (.csv, .csv.gz), .parquet, one .txt/.md/.html "
                   "file (id = file name), or a folder of them (id = relative path); other fields or columns "
                   "become metadata")
    q.add_argument("--id-column", default="id", metavar="NAME",
                   help="the JSONL field or CSV/Parquet column holding each document's id (default id)")
    q.add_argument("--text-column", default="text", metavar="NAME",
                   help="the JSONL field or CSV/Parquet column holding each document's text (default text)")
    q.add_argument("--max-bytes", type=positive_int, default=MAX_DOCUMENT_BYTES,
                   help=f"skip (as a bad row) documents larger than this many bytes "
                        f"(default {MAX_DOCUMENT_BYTES:,})")
    q.add_argument("--strict", action="store_true",
                   help="stop at the first bad row, with exit status 2 and nothing written; every input is "
                        "read once in full before indexing (stdin via a temporary file)")
    q.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="fingerprint in N worker processes while one writes (default 1)")
    q.add_argument("--bulk", action="store_true",
                   help="for a large first load: write documents in batches and fill the key table once at the "
                        "end, in key order (the cost per document stays flat instead of growing with the index: "
                        "bench/trace.md; queries see the documents when the run ends; after a kill, `unspin index "
                        "check --repair` finishes the load)")
    _add_progress_option(q)
    q.set_defaults(func=cmd_index_add)
    q = isub.add_parser("stats", help="documents, words and size of an index")
    q.add_argument("--index", required=True, help="the SQLite index file")
    q.set_defaults(func=cmd_index_stats)
    q = isub.add_parser("remove", help="remove documents by id")
    q.add_argument("--index", required=True, help="the SQLite index file")
    q.add_argument("ids", nargs="+", metavar="ID", help="document ids to remove")
    q.set_defaults(func=cmd_index_remove)
    q = isub.add_parser("check", help="verify an index file and, with --repair, fix what can be fixed",
                        description="Verify an index file: SQLite's integrity check, then unspin's own (settings, "
                                    "every document's band keys present, no orphan band rows). Prints a JSON "
                                    "report {\"ok\", \"problems\", ...}; exit 0 when sound or repaired, 2 when "
                                    "problems remain.")
    q.add_argument("--index", required=True, help="the SQLite index file")
    q.add_argument("--repair", action="store_true",
                   help="rebuild what can be rebuilt (SQLite indexes, band rows, a copy of the readable documents "
                        "when pages are damaged; the damaged file is kept as INDEX.damaged); run it while no other "
                        "process uses the index")
    q.set_defaults(func=cmd_index_check)

    p = sub.add_parser("scan", help="check a whole corpus or crawl into a Parquet dataset, with spin families",
                       description="Check every document of a corpus or crawl, and group spin families (spun "
                                   "copies of one story, and its likely source). Writes a Parquet dataset folder "
                                   "(one row per document) and summary.json; resumable: a rerun skips the "
                                   "partitions already written.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="JSONL rows (.jsonl, .jsonl.gz), CSV, Parquet, WARC "
                   "(.warc, .warc.gz: HTML responses reduced to their main text, URL and date kept), .txt/.html "
                   "files or folders of them")
    p.add_argument("--out", required=True, help="the output folder (a Parquet dataset: part-*.parquet, "
                   "summary.json; _work/ holds what a rerun resumes from)")
    p.add_argument("--id-column", default="id", metavar="NAME", help="JSONL field or CSV/Parquet column of the ids")
    p.add_argument("--text-column", default="text", metavar="NAME",
                   help="JSONL field or CSV/Parquet column of the texts")
    p.add_argument("--workers", type=positive_int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask distributed scheduler instead "
                   "of local processes (the workers need unspin installed; see README)")
    p.add_argument("--index", help="a trace index (unspin index add): link documents and families to known sources")
    p.add_argument("--partition-size", type=positive_int, default=scan_mod.PARTITION_SIZE,
                   help=f"documents per output file and unit of work (default {scan_mod.PARTITION_SIZE})")
    p.add_argument("--families", action=argparse.BooleanOptionalAction, default=True,
                   help="group spin families (default on; --no-families: only check each document)")
    p.add_argument("--max-family", type=positive_int, default=scan_mod.MAX_FAMILY,
                   help=f"a family never grows beyond this many documents (default {scan_mod.MAX_FAMILY}): "
                        f"the guard against hub documents chaining stories together")
    p.add_argument("--top-spans", type=positive_int, default=scan_mod.TOP_SPANS,
                   help=f"suspicious spans kept per document (default {scan_mod.TOP_SPANS})")
    p.add_argument("--report", nargs="?", const=True, metavar="HTML",
                   help="also write an HTML summary (default OUT/report.html); without INPUT: of the scan in --out")
    _add_verdict_options(p)
    p.add_argument("--lm", help="KenLM model file to use instead of the shipped one")
    p.add_argument("--channel", help="channel file to use instead of the shipped one")
    p.add_argument("--time-budget", type=seconds, default=DEFAULT_TIME_BUDGET_S, metavar="SECONDS",
                   help=f"seconds one document may take (default {DEFAULT_TIME_BUDGET_S:g}; 0: no limit)")
    p.add_argument("--max-bytes", type=positive_int, default=MAX_DOCUMENT_BYTES,
                   help=f"documents larger than this many bytes become error rows (default {MAX_DOCUMENT_BYTES:,})")
    _add_progress_option(p)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("learn", help="learn a spinner profile from many spun texts of one source",
                       description="Learn a spinner profile from many texts of one source (a site, a crawl "
                                   "shard, a spin family): which substitutions its spinner makes. No original "
                                   "text is needed. Use it with `unspin check --profile`.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="JSONL rows {id, text}, .jsonl.gz, CSV, Parquet, "
                   "text/HTML files or folders of them, - for JSONL on stdin")
    p.add_argument("-o", "--output", required=True, help="where to write the profile (JSON, strongest pairs first)")
    p.add_argument("--iterations", type=positive_int, default=2,
                   help="decoding passes, each with the previous pass's profile as its prior (default 2)")
    p.add_argument("--show", type=int, default=10, help="list this many learned pairs on stderr (default 10)")
    p.add_argument("--index", help="a trace index of originals (`unspin index add`): a text whose source is found "
                   "there is aligned to it, and each substitution it explains becomes an exact pair of the profile")
    p.add_argument("--max-bytes", type=positive_int, default=MAX_DOCUMENT_BYTES,
                   help=f"skip documents larger than this many bytes (default {MAX_DOCUMENT_BYTES:,})")
    p.add_argument("--lm", help="KenLM model file to use instead of the shipped one")
    p.add_argument("--channel", help="channel file to use instead of the shipped one")
    _add_progress_option(p)
    p.set_defaults(func=cmd_learn)

    p = sub.add_parser("serve", help="the HTTP API and the web page (FastAPI + uvicorn)",
                       description="Serve the HTTP API (POST /v1/check, /v1/restore, /v1/trace, /v1/compare; "
                                   "OpenAPI at /docs) and the web page at /. Index writes (POST/DELETE "
                                   "/v1/index/documents) need a bearer token; without one they are disabled.")
    p.add_argument("--index", help="a trace index (SQLite file from `unspin index add`): enables /v1/trace, "
                   "the index endpoints and the sources on the page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="worker processes, each with its own copy of the models (default 1)")
    p.add_argument("--token", help="bearer token for index writes (default: $UNSPIN_TOKEN; none: writes disabled); "
                   "prefer the environment variable, as a command line is visible to other users")
    p.add_argument("--max-bytes", type=positive_int, default=MAX_DOCUMENT_BYTES,
                   help=f"largest request body in bytes (default {MAX_DOCUMENT_BYTES:,})")
    p.add_argument("--max-pending", type=positive_int, default=4,
                   help="requests one worker admits at once (one runs, the rest wait); more get 503 at once "
                        "(default 4)")
    p.add_argument("--queue-timeout", type=seconds, default=30.0, metavar="SECONDS",
                   help="longest wait of an admitted request for the engine before a 503 (default 30)")
    p.add_argument("--time-budget", type=seconds, default=30.0, metavar="SECONDS",
                   help="seconds one text may take; past it the rest is left unjudged and the result's warnings "
                        "say so (default 30; 0: no limit)")
    p.add_argument("--lm", help="KenLM model file to use instead of the shipped one")
    p.add_argument("--channel", help="channel file to use instead of the shipped one")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default warning)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("lookup", help="list the channel's candidate originals of a word or phrase")
    p.add_argument("phrase", nargs="+", help="the observed word or phrase (1-4 words)")
    p.add_argument("--channel", help="channel file to use instead of the shipped one")
    p.set_defaults(func=cmd_lookup)

    # The offline wing: evaluation and model building (needs ../shared/data).
    p = sub.add_parser("spin", help="spin a text with the synthetic spinner (for evaluation)",
                       description="Spin a text like a dictionary spinner.")
    spinner.add_arguments(p)
    p.set_defaults(func=spinner.run)

    p = sub.add_parser("bench", help="run a benchmark and write its results under bench/",
                       description="Run a benchmark and write its results under bench/.")
    bsub = p.add_subparsers(dest="part", required=True, metavar="BENCHMARK")
    for part, module, run, help_ in (
        ("core", bench_core, bench_core.run, "detection, localization, restoration and speed (bench/core.md)"),
        ("all", bench_core, bench_core.run, "core plus the spinner calibration table"),
        ("neural", bench_neural, bench_neural.run,
         "the neural scorer against the fast path (rescoring study; --engines: the calibrated engines side by side)"),
        ("neural-dev", neural_eval, neural_eval.run, "on the real dev pairs: how often the 4-gram and the neural "
                                                     "scorer rank the true original first among the decoder's candidates"),
        ("reliability", bench_reliability, bench_reliability.run,
         "fuzz the readers, kill index add, worst-case time per MB, short trace queries (bench/reliability.md)"),
        ("trace", bench_trace, bench_trace.run_command,
         "trace recall, false matches, latency and index size (bench/trace.md)"),
        ("serve", bench_serve, bench_serve.run,
         "load on `unspin serve` over loopback: requests/s, p50/p99, 2x overload, memory (bench/serve.md)"),
        ("scan", bench_scan, bench_scan.run_command,
         "scan throughput (1, 2 workers, Dask LocalCluster), memory and spin-family precision/recall (bench/scan.md)"),
    ):
        q = bsub.add_parser(part, help=help_, description=help_)
        module.add_arguments(q)
        q.set_defaults(func=run)

    for name, module, help_ in (
        ("train-lm", train_lm, "train the n-gram language model with KenLM's lmplz"),
        ("build-channel", channel_build, "build the substitution channel from the lexical resources"),
        ("build-names", names_build, "build the gazetteer of known names from the training corpora"),
        ("coverage", coverage, "how often the channel holds the original of a real substitution (dev pairs)"),
        ("calibrate", calibrate, "fit the spin-probability and confidence calibration"),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (usage errors give 2, as argparse does)."""
    tune_garbage_collector()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error
        return int(exit_.code or 0)
    try:
        return args.func(args) or 0
    except (InputError, ModelMissing, NeuralUnavailable, sqlite3.DatabaseError) as err:
        print(f"unspin {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head`: a normal end
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the last resort: a clear message, never a traceback
        print(f"unspin {args.command}: internal error: {type(err).__name__}: {err} (please report it)",
              file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
