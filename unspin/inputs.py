"""Reading user input safely: files, stdin, HTML, JSONL rows.

Every failure becomes an `InputError` with a message a person can act on; the
CLI prints it and exits with status 2 instead of a traceback.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from .text import is_mostly_text

# One document larger than this is refused (decoding runs at a few thousand words a
# second); a corpus belongs in --jsonl rows, one document each.
MAX_DOCUMENT_BYTES = 2_000_000


class InputError(ValueError):
    """Input that unspin cannot read, with the reason.

    >>> str(InputError("notes.txt: no such file"))
    'notes.txt: no such file'
    """


def replace_surrogates(text: str) -> str:
    """`text` with lone UTF-16 surrogates (which JSON can carry, "\\ud800", but UTF-8 cannot)
    replaced by U+FFFD, one character for one, so that offsets stay valid.

    >>> replace_surrogates(json.loads('"a \\\\ud800 b"')) == "a \\ufffd b"
    True
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def clean_surrogates(text: str) -> tuple[str, int]:
    """(`replace_surrogates(text)`, how many characters were replaced).

    >>> clean_surrogates("a " + chr(0xD800) + chr(0xDFFF) + " b") == ("a \\ufffd\\ufffd b", 2)
    True
    """
    cleaned = replace_surrogates(text)
    if cleaned is text:
        return text, 0
    return cleaned, sum(1 for ch in text if "\ud800" <= ch <= "\udfff")


def json_line(record: dict) -> str:
    """One JSON line; characters UTF-8 cannot carry (lone surrogates in an id) are escaped.

    >>> json_line({"id": "a1", "words": 4})
    '{"id": "a1", "words": 4}\\n'
    >>> json_line({"id": "\\ud800"}) == '{"id": "\\\\ud800"}\\n'
    True
    """
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True)
    return line + "\n"


def decode_bytes(data: bytes, name: str = "input") -> str:
    """`data` decoded as UTF-8 text (a BOM dropped); InputError, naming `name`, for binary data
    (NUL bytes, control characters) or bytes that are not UTF-8.

    >>> decode_bytes(b"\\xef\\xbb\\xbfThe plan.\\n")
    'The plan.\\n'
    >>> decode_bytes(b"caf\\xe9", "notes.txt")
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: notes.txt: not valid UTF-8 (byte 3); convert it first, e.g. `iconv -f latin1 -t utf-8`
    """
    if b"\x00" in data[:65536]:
        raise InputError(f"{name}: looks like a binary file (NUL bytes); give plain text, Markdown or HTML")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{name}: not valid UTF-8 (byte {err.start}); convert it first, e.g. "
                         f"`iconv -f latin1 -t utf-8`") from None
    if not is_mostly_text(text):
        raise InputError(f"{name}: looks like a binary file (control characters); give plain text, Markdown or HTML")
    return text


HTML_EXTENSIONS = (".html", ".htm")


def looks_like_html(text: str) -> bool:
    """True when `text` is clearly an HTML document: it starts (after white space) with a
    doctype or an <html> tag. Text that merely mentions a tag is not HTML.

    >>> looks_like_html("<!DOCTYPE html><html><body>...</body></html>"), looks_like_html("Use the <b> tag.")
    (True, False)
    """
    head = text[:200].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or (head.startswith("<") and "<body" in text[:5000].lower())


def html_to_text(html: str) -> str:
    """The main text of a web page (trafilatura), or its visible text as a fallback.

    >>> html_to_text("<html><body><article><p>The plan was ready.</p></article></body></html>")  # doctest: +SKIP
    'The plan was ready.'
    """
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=False, favor_recall=True)
    if text:
        return text
    from lxml import html as lxml_html

    try:
        return lxml_html.fromstring(html).text_content().strip()
    except Exception:  # lxml raises several types on junk markup; none of them is the user's fault
        return ""


def reduce_input(text: str, html: bool | None = None) -> tuple[str, str]:
    """(the text to check, its input format): HTML is reduced to its main text when `html` is True,
    or when `html` is None and `text` is clearly an HTML document; html=False keeps any text as is.

    >>> reduce_input("The plan <b>was</b> ready.")
    ('The plan <b>was</b> ready.', 'text')
    >>> reduce_input("<!doctype html><html><body><p>The plan was ready.</p></body></html>")[1]
    'html'
    """
    if html or (html is None and looks_like_html(text)):
        return html_to_text(text), "html"
    return text, "text"


def html_choice(path: str, html: bool | None = None) -> bool | None:
    """Whether a file is read as HTML: as asked; else by its extension (.html/.htm yes, .txt/.md
    no); else (stdin, other names) None: decided by whether the text is clearly an HTML document.

    >>> html_choice("page.HTM"), html_choice("notes.md"), html_choice("-"), html_choice("notes.md", html=True)
    (True, False, None, True)
    """
    if html is not None:
        return html
    lower = path.lower()
    if lower.endswith(HTML_EXTENSIONS):
        return True
    if lower.endswith((".txt", ".md")):
        return False
    return None


@dataclass
class Document:
    """A user's document as unspin checks it.

    >>> Document("The plan was ready.", "stdin", "text")
    Document(text='The plan was ready.', source='stdin', format='text')
    """

    text: str      # the text that every offset in a result indexes
    source: str    # the file name, or "stdin"
    format: str    # "text", or "html" when `text` is the main text extracted from an HTML page


def load_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> Document:
    """Read FILE (or `-` for stdin), HTML reduced to its main text (see `html_choice`).

    >>> load_document("note.txt")                                     # doctest: +SKIP
    Document(text='The plan was ready.\\n', source='note.txt', format='text')
    """
    text, fmt = reduce_input(read_bytes_text(path, max_bytes), html_choice(path, html))
    return Document(text, "stdin" if path == "-" else path, fmt)


def read_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> str:
    """The text of FILE (or `-` for stdin), HTML reduced to its main text (see `load_document`).

    >>> read_document("note.txt")                                     # doctest: +SKIP
    'The plan was ready.\\n'
    """
    return load_document(path, max_bytes, html).text


def read_bytes_text(path: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """FILE (or `-` for stdin) decoded as UTF-8 text, refused when binary or over `max_bytes`.

    >>> read_bytes_text("note.txt")                                   # doctest: +SKIP
    'The plan was ready.\\n'
    >>> read_bytes_text("note.txt", max_bytes=10)                     # doctest: +SKIP
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: note.txt: larger than 10 bytes; split it into documents and use --jsonl, or raise the limit with --max-bytes
    """
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            p = Path(path)
            if p.is_dir():
                raise InputError(f"{path}: is a folder; give a file (or --jsonl for many texts)")
            with open(p, "rb") as f:
                data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    if len(data) > max_bytes:
        raise InputError(f"{name}: larger than {max_bytes:,} bytes; split it into documents and use "
                         f"--jsonl, or raise the limit with --max-bytes")
    return decode_bytes(data, name)


@dataclass
class Row:
    """One JSONL input row: its id and text, or the reason it could not be read.

    >>> Row(1, "q1", "The plan was ready."), Row(2, None, None, "row is not a JSON object").error
    (Row(line_no=1, id='q1', text='The plan was ready.', error=None), 'row is not a JSON object')
    """

    line_no: int
    id: Any
    text: str | None
    error: str | None = None


def read_jsonl_rows(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> Iterator[Row]:
    """Rows `{"id": ..., "text": ...}`; a bad row comes back with `error` set, the run goes on.
    A row's text is reduced to its main text with html=True, or by default when it is clearly
    an HTML document.

    >>> [(r.id, r.error) for r in read_jsonl_rows("q.jsonl")]         # doctest: +SKIP
    [('q1', None), (None, 'row is not a JSON object')]
    """
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for line_no, raw in enumerate(stream, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Row(line_no, None, None, "row is not valid UTF-8")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                yield Row(line_no, None, None, f"row is not JSON: {err.msg}")
                continue
            if not isinstance(obj, dict):
                yield Row(line_no, None, None, "row is not a JSON object")
                continue
            row_id = obj.get("id", line_no)
            text = obj.get("text")
            if isinstance(text, str):
                text = replace_surrogates(text)
            if not isinstance(text, str):
                yield Row(line_no, row_id, None, "row has no string field 'text'")
            elif len(text.encode("utf-8", "surrogatepass")) > max_bytes:
                yield Row(line_no, row_id, None, f"text larger than {max_bytes:,} bytes")
            else:
                if html or (html is None and looks_like_html(text)):
                    text = html_to_text(text)
                yield Row(line_no, row_id, text)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def map_jsonl(in_path: str, out_path: str | None, handle: Callable[[str], dict],
              max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None,
              on_row: Callable[[], None] | None = None) -> None:
    """Batch mode: one JSON row out per row in, in order; `handle(text)` gives a row's fields, and
    a row that cannot be read gives {"id", "error", "line"} while the run goes on. An output
    file appears only when the run completes; `on_row()` is called after each row.

    >>> map_jsonl("q.jsonl", "out.jsonl", lambda text: {"words": len(text.split())})  # doctest: +SKIP
    >>> print(open("out.jsonl").read(), end="")                                     # doctest: +SKIP
    {"id": "q1", "words": 4}
    {"id": null, "error": "row is not a JSON object", "line": 2}
    """
    if in_path != "-" and not Path(in_path).is_file():
        raise InputError(f"{in_path}: no such file")
    check_output_path(out_path, inputs=[in_path])
    with (atomic_output(out_path) if out_path else contextlib.nullcontext(sys.stdout)) as out:
        for row in read_jsonl_rows(in_path, max_bytes, html):
            if row.error:
                rec = {"id": row.id, "error": row.error, "line": row.line_no}
            else:
                rec = {"id": row.id, **handle(row.text)}
            out.write(json_line(rec))
            if out is sys.stdout:
                out.flush()
            if on_row is not None:
                on_row()


def check_new_file_path(path: str | os.PathLike, what: str) -> None:
    """Refuse, before any work, a path where `what` cannot be written: a folder, or a missing or
    read-only folder around it (the file is written beside itself and renamed, or journaled there).

    >>> check_new_file_path("/", "the output")
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: /: is a folder; give a file name for the output
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path}: is a folder; give a file name for {what}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: folder {parent} is not writable")


def check_output_path(out_path: str | None, inputs: Iterable[str | None] = ()) -> None:
    """Refuse, before any work, an output path that cannot be written or that names an input.

    >>> check_output_path(None)                                       # no output file: nothing to check
    >>> check_output_path("q.jsonl", inputs=["q.jsonl"])              # doctest: +SKIP
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: q.jsonl: is also an input; write the output to another file
    """
    if not out_path:
        return
    p = Path(out_path)
    check_new_file_path(p, "the output")
    for inp in inputs:
        if inp and inp != "-" and p.exists() and Path(inp).exists() and os.path.samefile(inp, p):
            raise InputError(f"{out_path}: is also an input; write the output to another file")


@contextlib.contextmanager
def atomic_output(out_path: str) -> Iterator[IO[str]]:
    """A text file that replaces `out_path` only when the block completes (a failed or killed
    run leaves any earlier file there untouched).

    >>> with atomic_output("out.jsonl") as f:                         # doctest: +SKIP
    ...     _ = f.write(json_line({"id": "q1", "words": 4}))
    """
    p = Path(out_path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- reference documents for an index ---------------------------------------------------
# What `unspin index add` reads. A bad row (or a bad file in a folder) is not fatal: it comes
# back as a `BadRow` with where and why, and the reader goes on. A whole input that cannot be
# used (missing, unknown format, no id/text column) is an `InputError` from `check_input`.

FOLDER_EXTENSIONS = (".txt", ".html", ".htm", ".md")
INPUT_FORMATS = {  # file name ending -> format; longest endings first
    ".jsonl.gz": "jsonl.gz", ".ndjson.gz": "jsonl.gz", ".csv.gz": "csv.gz",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
    ".txt": "text", ".md": "text", ".html": "text", ".htm": "text",
    ".warc.gz": "warc.gz", ".warc": "warc",
}
_FORMATS_HINT = ("give JSONL rows {\"id\", \"text\"} (.jsonl, .ndjson, .jsonl.gz, or - for stdin), CSV (.csv, "
                 ".csv.gz), Parquet (.parquet), a web crawl (.warc, .warc.gz), a .txt/.md/.html file, or a folder "
                 "of them")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class BadRow:
    """A row (or a file of a folder) that cannot become a document: where it is and why.

    >>> str(BadRow("rows.jsonl", 3, "row is not valid JSON")), BadRow("notes.txt", None, "binary").where
    ('rows.jsonl:3: row is not valid JSON', 'notes.txt')
    """

    source: str         # the input file (a folder's file), or "stdin"
    row: int | None     # line number (JSONL, CSV), record number (Parquet), or None for a whole file
    reason: str

    @property
    def where(self) -> str:
        """`file:row`, or the file alone."""
        return self.source if self.row is None else f"{self.source}:{self.row}"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def input_format(path: str) -> str:
    """The format of input PATH: "stdin" for `-`, "folder", or a value of `INPUT_FORMATS`.
    Raises InputError for a missing path or an unknown format.

    >>> input_format("-")
    'stdin'
    >>> input_format("no-such-rows.jsonl")
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: no-such-rows.jsonl: no such file or folder
    >>> input_format("rows.jsonl.gz")                                 # doctest: +SKIP
    'jsonl.gz'
    """
    if path == "-":
        return "stdin"
    p = Path(path)
    if p.is_dir():
        return "folder"
    name = p.name.lower()
    fmt = next((f for end, f in INPUT_FORMATS.items() if name.endswith(end)), None)
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    if fmt is None:
        raise InputError(f"{path}: unknown input format; {_FORMATS_HINT}")
    return fmt


def check_input(path: str, id_column: str = "id", text_column: str = "text") -> str:
    """Check at once, without reading the rows, that input PATH can be read: it exists, has a
    known format, is readable, and (CSV, Parquet) has the id and text columns. Returns the
    format (see `input_format`); raises InputError otherwise.

    >>> check_input("-")
    'stdin'
    >>> check_input("rows.csv", text_column="body")                   # doctest: +SKIP
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: rows.csv: CSV input needs columns 'id' and 'body' (see --id-column, --text-column); found 'id', 'text'
    """
    if id_column == text_column:
        raise InputError(f"the id and the text column are both {id_column!r}; give two different columns")
    fmt = input_format(path)
    if fmt in ("stdin", "folder"):
        if fmt == "folder" and not os.access(path, os.R_OK | os.X_OK):
            raise InputError(f"{path}: folder is not readable")
        return fmt
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if fmt.endswith(".gz") and head != _GZIP_MAGIC:
        raise InputError(f"{path}: not gzip-compressed; give it a name without .gz")
    if fmt in ("csv", "csv.gz"):
        _csv_header(path, fmt, id_column, text_column)
    elif fmt == "parquet":
        _parquet_file(path, id_column, text_column)
    return fmt


def iter_input_docs(path: str, check_only: bool = False, *, id_column: str = "id", text_column: str = "text",
                    max_bytes: int = MAX_DOCUMENT_BYTES, on_bad: Callable[[BadRow], None] | None = None,
                    name: str | None = None) -> Iterator[dict]:
    """Documents `{"id", "text", ...metadata}` from JSONL rows (`-` for stdin; gzip for .jsonl.gz),
    CSV, Parquet, a folder of .txt/.md/.html files (id = relative path), or one such file (id = its
    name). The id and text come from `id_column` and `text_column` (JSONL fields, CSV or Parquet
    columns); the other fields become metadata. HTML is reduced to its main text.

    A bad row (not JSON, no id, text not a string or over `max_bytes`, invalid UTF-8, an
    unreadable or binary file) is passed to `on_bad` and skipped; without `on_bad` it raises
    InputError. `name` replaces PATH in messages (e.g. "stdin" for a copy of stdin).
    With check_only=True, only check at once that the input can be read (see `check_input`).

    >>> list(iter_input_docs("q.jsonl", on_bad=print))                # doctest: +SKIP
    q.jsonl:2: row is a list, not a JSON object
    [{'id': 'q1', 'text': 'The plan was ready.'}]
    """
    if check_only:
        check_input(path, id_column, text_column)
        return iter(())
    return _docs(iter_input_records(path, id_column=id_column, text_column=text_column, max_bytes=max_bytes,
                                    name=name), on_bad)


def _docs(records: Iterator[dict | BadRow], on_bad: Callable[[BadRow], None] | None) -> Iterator[dict]:
    for rec in records:
        if isinstance(rec, BadRow):
            if on_bad is None:
                raise InputError(str(rec))
            on_bad(rec)
        else:
            yield rec


def validate_input(path: str, *, id_column: str = "id", text_column: str = "text",
                   max_bytes: int = MAX_DOCUMENT_BYTES, name: str | None = None) -> int:
    """Read input PATH in full and raise InputError at its first bad row; returns its number of
    rows. (HTML is not extracted here, so this pass is quick next to indexing.)

    >>> validate_input("q.jsonl")                                     # doctest: +SKIP
    Traceback (most recent call last):
    ...
    unspin.inputs.InputError: q.jsonl:2: row is a list, not a JSON object
    """
    n = 0
    for rec in iter_input_records(path, id_column=id_column, text_column=text_column, max_bytes=max_bytes,
                                  name=name, convert_html=False):
        if isinstance(rec, BadRow):
            raise InputError(str(rec))
        n += 1
    return n


@contextlib.contextmanager
def spool_stdin(suffix: str = ".jsonl") -> Iterator[str]:
    """Copy stdin to a temporary file (on disk, not in memory) and give its path, so that it can
    be read twice; the file is removed when the block ends.

    >>> with spool_stdin() as path:                                   # doctest: +SKIP
    ...     n_rows = validate_input(path, name="stdin")
    """
    fd, tmp = tempfile.mkstemp(prefix="unspin-stdin.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def iter_input_records(path: str, *, id_column: str = "id", text_column: str = "text",
                       max_bytes: int = MAX_DOCUMENT_BYTES, name: str | None = None,
                       convert_html: bool = True) -> Iterator[dict | BadRow]:
    """The rows of input PATH, in order: a document dict, or a `BadRow` for each row that cannot
    be one. Raises InputError (when iterated) for an input that cannot be read at all.

    >>> list(iter_input_records("q.jsonl"))[1]                        # doctest: +SKIP
    BadRow(source='q.jsonl', row=2, reason='row is a list, not a JSON object')
    """
    fmt = check_input(path, id_column, text_column)
    opts = dict(id_column=id_column, text_column=text_column, max_bytes=max_bytes, convert_html=convert_html)
    if fmt == "stdin":
        yield from _jsonl_records(sys.stdin.buffer, name or "stdin", **opts)
    elif fmt == "folder":
        root = Path(path)
        files = sorted(f for f in root.rglob("*") if f.suffix.lower() in FOLDER_EXTENSIONS and f.is_file())
        for f in files:
            yield _file_record(f, f.relative_to(root).as_posix(), max_bytes, convert_html)
    elif fmt == "text":
        yield _file_record(Path(path), Path(path).name, max_bytes, convert_html, name)
    elif fmt in ("jsonl", "jsonl.gz"):
        with (gzip.open(path, "rb") if fmt == "jsonl.gz" else open(path, "rb")) as stream:
            yield from _jsonl_records(stream, name or path, **opts)
    elif fmt in ("csv", "csv.gz"):
        yield from _csv_records(path, fmt, name or path, **opts)
    elif fmt in ("warc", "warc.gz"):
        yield from warc_records(path, name or path, max_bytes=max_bytes, convert_html=convert_html)
    else:
        yield from _parquet_records(path, name or path, **opts)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (bytes, bytearray)):
        return "binary"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _doc_from_fields(fields: dict, source: str, row: int, id_column: str, text_column: str, max_bytes: int,
                     convert_html: bool) -> dict | BadRow:
    """A document from one row's fields, or why it cannot be one."""
    doc_id = fields.get(id_column)
    if doc_id is None:
        return BadRow(source, row, f"no {id_column!r}" + (" (it is null)" if id_column in fields else ""))
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int, float)):
        return BadRow(source, row, f"{id_column!r} is {_kind(doc_id)}, not a string or a number")
    doc_id = str(doc_id)
    if not doc_id.strip():
        return BadRow(source, row, f"{id_column!r} is empty")
    if text_column not in fields:
        return BadRow(source, row, f"no {text_column!r}")
    text = fields[text_column]
    if not isinstance(text, str):
        return BadRow(source, row, f"{text_column!r} is {_kind(text)}, not a string")
    text = replace_surrogates(text)  # as `check` and `trace` read JSONL rows: offsets kept
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return BadRow(source, row, f"{text_column!r} is {size:,} bytes, over the limit of {max_bytes:,} (--max-bytes)")
    if convert_html and looks_like_html(text):
        text = html_to_text(text)
    doc = {k: v for k, v in fields.items() if k not in (id_column, text_column)}
    doc["id"] = doc_id
    doc["text"] = text
    return doc


_READ_ERRORS = (OSError, EOFError, zlib.error)  # I/O errors, corrupt or truncated gzip


def _jsonl_records(stream: IO[bytes], source: str, *, id_column: str, text_column: str, max_bytes: int,
                   convert_html: bool) -> Iterator[dict | BadRow]:
    line_no = 0
    lines = iter(stream)
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except _READ_ERRORS as err:
            yield BadRow(source, line_no + 1, f"cannot read on ({err}); the rest of this input is skipped")
            return
        line_no += 1
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as err:
            yield BadRow(source, line_no, f"not valid UTF-8 (byte {err.start + 1} of the line)")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            yield BadRow(source, line_no, f"row is not valid JSON ({err.msg}, column {err.colno})")
            continue
        if not isinstance(obj, dict):
            yield BadRow(source, line_no, f"row is {_kind(obj)}, not a JSON object")
            continue
        if "\\ud" in line or "\\uD" in line:  # \uXXXX escapes may give unpaired surrogates
            # (in the text they become U+FFFD; an id or metadata is not altered behind one's back)
            try:
                json.dumps({k: v for k, v in obj.items() if k != text_column}, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                yield BadRow(source, line_no, "an id or metadata field is not valid Unicode (an unpaired "
                                              "surrogate escape)")
                continue
        yield _doc_from_fields(obj, source, line_no, id_column, text_column, max_bytes, convert_html)


def _file_record(f: Path, doc_id: str, max_bytes: int, convert_html: bool,
                 source: str | None = None) -> dict | BadRow:
    source = source or str(f)
    try:
        with open(f, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        return BadRow(source, None, f"cannot read ({err.strerror or err})")
    if len(data) > max_bytes:
        return BadRow(source, None, f"larger than {max_bytes:,} bytes (--max-bytes)")
    try:
        text = decode_bytes(data, source)
    except InputError as err:
        return BadRow(source, None, str(err).removeprefix(f"{source}: "))
    if convert_html:
        suffix = f.suffix.lower()
        if suffix in HTML_EXTENSIONS or (suffix not in (".txt", ".md") and looks_like_html(text)):
            text = html_to_text(text)
    return {"id": doc_id, "text": text}


def _open_text(path: str, fmt: str) -> IO[str]:
    """A CSV file as text; bytes that are not UTF-8 become lone surrogates, found per row."""
    raw = gzip.open(path, "rb") if fmt.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_header(path: str, fmt: str, id_column: str, text_column: str) -> list[str]:
    try:
        with _open_text(path, fmt) as f:
            header = next(csv.reader(f), None)
    except (_READ_ERRORS + (csv.Error,)) as err:
        raise InputError(f"{path}: cannot read the CSV header ({err})") from None
    if not header:
        raise InputError(f"{path}: CSV input needs a header row naming its columns")
    missing = [c for c in (id_column, text_column) if c not in header]
    if missing:
        raise InputError(f"{path}: CSV input needs columns {id_column!r} and {text_column!r} (see --id-column, "
                         f"--text-column); found {', '.join(map(repr, header))}")
    return header


def _lift_csv_field_limit() -> None:
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:  # the limit is a C long, 32 bits on some platforms
        csv.field_size_limit(2**31 - 1)


def _csv_records(path: str, fmt: str, source: str, *, id_column: str, text_column: str, max_bytes: int,
                 convert_html: bool) -> Iterator[dict | BadRow]:
    # The csv module's own field limit (131,072 characters) is lifted: after refusing a field it
    # would resume parsing in the middle of it, and could index fragments of it as rows.
    # The size limit is applied below, to the text in bytes, as for the other formats.
    _lift_csv_field_limit()
    with _open_text(path, fmt) as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        while True:
            line_no = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield BadRow(source, line_no, f"not valid CSV ({err})")
                continue
            except _READ_ERRORS as err:
                yield BadRow(source, line_no, f"cannot read on ({err}); the rest of this input is skipped")
                return
            if header is None:
                header = row
                continue
            if not row:
                continue
            if len(row) != len(header):
                yield BadRow(source, line_no, f"row has {len(row)} fields, the header has {len(header)}")
                continue
            try:
                "".join(row).encode("utf-8")
            except UnicodeEncodeError:
                yield BadRow(source, line_no, "not valid UTF-8")
                continue
            yield _doc_from_fields(dict(zip(header, row)), source, line_no, id_column, text_column, max_bytes,
                                   convert_html)


def _parquet_file(path: str, id_column: str, text_column: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), "
                         f"or convert it to JSONL rows {{\"id\", \"text\"}}") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own error types for files that are not Parquet
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    names = parquet.schema_arrow.names
    if not {id_column, text_column} <= set(names):
        raise InputError(f"{path}: Parquet input needs {id_column!r} and {text_column!r} columns (see --id-column, "
                         f"--text-column); found {', '.join(map(repr, names))}")
    return parquet


def _parquet_records(path: str, source: str, *, id_column: str, text_column: str, max_bytes: int,
                     convert_html: bool) -> Iterator[dict | BadRow]:
    parquet = _parquet_file(path, id_column, text_column)
    n = 0
    batches = parquet.iter_batches(batch_size=1000)  # stream: a corpus need not fit in memory
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as err:  # pyarrow's errors for a damaged file
            yield BadRow(source, n + 1, f"cannot read on ({err}); the rest of this input is skipped")
            return
        for fields in _parquet_rows(batch):
            n += 1
            if isinstance(fields, str):
                yield BadRow(source, n, fields)
            else:
                yield _doc_from_fields(fields, source, n, id_column, text_column, max_bytes, convert_html)


def _parquet_rows(batch) -> list[dict | str]:
    """A record batch as dicts; a row whose string column is not valid UTF-8 (a damaged file, or
    bytes stored as a string column) comes back as the reason, the other rows as usual."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        out: list[dict | str] = []
        for i in range(batch.num_rows):
            try:
                out.append(batch.slice(i, 1).to_pylist()[0])
            except UnicodeDecodeError as err:
                out.append(f"not valid UTF-8 (byte {err.start + 1} of a string field)")
        return out


# ---- web crawls (WARC) -------------------------------------------------------------------
# Each HTTP response (or resource record) whose content is text or HTML becomes one document:
# id = its WARC-Record-ID, with `url` (WARC-Target-URI) and `date` (WARC-Date) as metadata, HTML
# reduced to its main text. Other records (requests, metadata, images) are passed over. A corrupt
# record becomes a BadRow, and reading resumes at the next record that can be found.
WARC_TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
_WARC_RESYNC_CHUNK = 1 << 16


def warc_records(path: str, source: str | None = None, *, max_bytes: int = MAX_DOCUMENT_BYTES,
                 convert_html: bool = True) -> Iterator[dict | BadRow]:
    """The text documents of a WARC file (.warc or .warc.gz, read with warcio), in order; a
    corrupt record comes back as a `BadRow` (row = its record number) and the reader goes on.

    >>> [d["url"] for d in warc_records("crawl.warc.gz") if isinstance(d, dict)]   # doctest: +SKIP
    ['https://example.org/a1', 'https://example.org/a2']
    """
    try:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed
    except ImportError:
        raise InputError(f"{path}: reading WARC needs warcio (pip install warcio)") from None
    source = source or path
    resync_mark = _GZIP_MAGIC + b"\x08" if path.lower().endswith(".gz") else b"WARC/1."
    record_no = 0
    start = 0
    with open(path, "rb") as f:
        while True:
            f.seek(start)
            records = ArchiveIterator(f)
            try:
                for record in records:
                    record_no += 1
                    doc = _warc_doc(record, source, record_no, max_bytes, convert_html)
                    if doc is not None:
                        yield doc
                return
            except (ArchiveLoadFailed, ValueError, *_READ_ERRORS) as err:
                record_no += 1
                failed_at = start + (records.offset or 0)
                start = _find_after(f, resync_mark, failed_at + 1)
                rest = "skipped" if start >= 0 else "the rest of this input is skipped"
                yield BadRow(source, record_no, f"corrupt WARC record at byte {failed_at:,} "
                                                f"({str(err).splitlines()[0][:120]}); {rest}")
                if start < 0:
                    return


def _find_after(f: IO[bytes], mark: bytes, offset: int) -> int:
    """The offset of the next `mark` in file `f` at or after `offset`, or -1."""
    f.seek(offset)
    tail = b""
    pos = offset
    while True:
        chunk = f.read(_WARC_RESYNC_CHUNK)
        if not chunk:
            return -1
        data = tail + chunk
        i = data.find(mark)
        if i >= 0:
            return pos - len(tail) + i
        tail = data[-(len(mark) - 1):]
        pos += len(chunk)


def _warc_doc(record, source: str, record_no: int, max_bytes: int, convert_html: bool) -> dict | BadRow | None:
    """One WARC record as a document, a BadRow, or None for a record that holds no text."""
    kind = record.rec_type
    if kind not in ("response", "resource", "request", "metadata", "warcinfo", "revisit", "conversion",
                    "continuation"):
        return BadRow(source, record_no, f"corrupt WARC record (unknown type {str(kind)[:40]!r}); skipped")
    if kind not in ("response", "resource"):
        return None
    headers = record.http_headers if kind == "response" else None
    if kind == "response" and headers is None:
        return None  # a non-HTTP response (dns:, ftp:)
    content_type = (headers.get_header("Content-Type") if headers is not None
                    else record.rec_headers.get_header("Content-Type")) or ""
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime not in WARC_TEXT_TYPES:
        return None
    if headers is not None and not (headers.get_statuscode() or "").startswith("2"):
        return None  # redirects and errors carry no article
    url = record.rec_headers.get_header("WARC-Target-URI")
    doc_id = record.rec_headers.get_header("WARC-Record-ID") or url or f"record {record_no}"
    data = record.content_stream().read(max_bytes + 1)
    if len(data) > max_bytes:
        return BadRow(source, record_no, f"content is larger than {max_bytes:,} bytes (--max-bytes); skipped")
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        text = data.decode("utf-8", errors="replace")
    if "\x00" in text[:65536] or not is_mostly_text(text):
        return BadRow(source, record_no, "content looks binary; skipped")
    if convert_html and (mime != "text/plain" or looks_like_html(text)):
        text = html_to_text(text)
    return {"id": doc_id, "text": text, "url": url, "date": record.rec_headers.get_header("WARC-Date")}
