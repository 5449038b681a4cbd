"""Reading user input safely: files, stdin, HTML, JSONL rows.

Every failure becomes an `InputError` with a message a person can act on; the
CLI prints it and exits with status 2 instead of a traceback.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from .text import is_mostly_text

# One document larger than this is refused (decoding runs at a few thousand words a
# second); a corpus belongs in --jsonl rows, one document each.
MAX_DOCUMENT_BYTES = 2_000_000


class InputError(ValueError):
    """Input that unspin cannot read, with the reason."""


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


def json_line(record: dict) -> str:
    """One JSON line; characters UTF-8 cannot carry (lone surrogates in an id) are escaped."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True)
    return line + "\n"


def decode_bytes(data: bytes, name: str = "input") -> str:
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
    doctype or an <html> tag. Text that merely mentions a tag is not HTML."""
    head = text[:200].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or (head.startswith("<") and "<body" in text[:5000].lower())


def html_to_text(html: str) -> str:
    """The main text of a web page (trafilatura), or its visible text as a fallback."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=False, favor_recall=True)
    if text:
        return text
    from lxml import html as lxml_html

    try:
        return lxml_html.fromstring(html).text_content().strip()
    except Exception:  # lxml raises several types on junk markup; none of them is the user's fault
        return ""


@dataclass
class Document:
    """A user's document as unspin checks it."""

    text: str      # the text that every offset in a result indexes
    source: str    # the file name, or "stdin"
    format: str    # "text", or "html" when `text` is the main text extracted from an HTML page


def load_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> Document:
    """Read FILE (or `-` for stdin). HTML (html=True; or by default a .html/.htm file, or a text
    that is clearly an HTML document) is reduced to its main text, and the result says so."""
    raw = read_bytes_text(path, max_bytes)
    if html is None:
        html = path.lower().endswith(HTML_EXTENSIONS) or (
            not path.lower().endswith((".txt", ".md")) and looks_like_html(raw))
    name = "stdin" if path == "-" else path
    if html:
        return Document(html_to_text(raw), name, "html")
    return Document(raw, name, "text")


def read_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> str:
    """The text of FILE (or `-` for stdin), HTML reduced to its main text (see `load_document`)."""
    return load_document(path, max_bytes, html).text


def read_bytes_text(path: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """FILE (or `-` for stdin) decoded as UTF-8 text, refused when binary or over `max_bytes`."""
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
    """One JSONL input row: its id and text, or the reason it could not be read."""

    line_no: int
    id: Any
    text: str | None
    error: str | None = None


def read_jsonl_rows(path: str, max_bytes: int = MAX_DOCUMENT_BYTES, html: bool | None = None) -> Iterator[Row]:
    """Rows `{"id": ..., "text": ...}`; a bad row comes back with `error` set, the run goes on.
    A row's text is reduced to its main text with html=True, or by default when it is clearly
    an HTML document."""
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
    file appears only when the run completes; `on_row()` is called after each row."""
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


def check_output_path(out_path: str | None, inputs: Iterable[str | None] = ()) -> None:
    """Refuse, before any work, an output path that cannot be written or that names an input."""
    if not out_path:
        return
    p = Path(out_path)
    if p.is_dir():
        raise InputError(f"{out_path}: is a folder; give a file name for the output")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out_path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{out_path}: folder {parent} is not writable")
    for inp in inputs:
        if inp and inp != "-" and p.exists() and Path(inp).exists() and os.path.samefile(inp, p):
            raise InputError(f"{out_path}: is also an input; write the output to another file")


@contextlib.contextmanager
def atomic_output(out_path: str) -> Iterator[IO[str]]:
    """A text file that replaces `out_path` only when the block completes (a failed or killed
    run leaves any earlier file there untouched)."""
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
def iter_input_docs(path: str, check_only: bool = False) -> Iterator[dict]:
    """Documents from JSONL rows, a folder of .txt/.html files, one text file, or Parquet.
    With check_only=True, only check (at once) that the input exists and has a known format."""
    if check_only:
        p = Path(path)
        if not p.exists():
            raise InputError(f"{path}: no such file or folder")
        if not p.is_dir() and p.suffix.lower() not in (".jsonl", ".ndjson", ".txt", ".md", ".html", ".htm",
                                                        ".parquet"):
            raise InputError(f"{path}: unknown input format; give JSONL rows {{\"id\", \"text\"}} (.jsonl), "
                             f"a folder of .txt/.html files, or .parquet")
        return iter(())
    return _iter_input_docs(path)


def _iter_input_docs(path: str) -> Iterator[dict]:
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".txt", ".html", ".htm", ".md"))
        for f in files:
            yield {"id": str(f.relative_to(p)), "text": read_document(str(f))}
        return
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    suffix = "".join(p.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(p)
    elif suffix in (".txt", ".md", ".html", ".htm"):
        yield {"id": p.name, "text": read_document(str(p))}
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), "
                             f"or convert it to JSONL rows {{\"id\", \"text\"}}") from None
        try:
            parquet = pq.ParquetFile(p)
        except Exception as err:  # pyarrow raises its own error types for files that are not Parquet
            raise InputError(f"{path}: not a readable Parquet file ({err})") from None
        if not {"id", "text"} <= set(parquet.schema_arrow.names):
            raise InputError(f"{path}: Parquet input needs 'id' and 'text' columns, "
                             f"found {', '.join(parquet.schema_arrow.names)}")
        for batch in parquet.iter_batches(batch_size=1000):  # stream: a corpus need not fit in memory
            for row in batch.to_pylist():
                row["id"] = str(row["id"])
                yield row
    else:
        raise InputError(f"{path}: unknown input format; give JSONL rows {{\"id\", \"text\"}} (.jsonl), "
                         f"a folder of .txt/.html files, or .parquet")


def _iter_jsonl(p: Path) -> Iterator[dict]:
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise InputError(f"{p}:{line_no}: row is not valid JSON ({err})") from None
            if not isinstance(obj, dict) or "id" not in obj:
                raise InputError(f"{p}:{line_no}: row needs an 'id' and a 'text'")
            text = obj.get("text")
            if text is not None and not isinstance(text, str):
                raise InputError(f"{p}:{line_no}: 'text' is not a string")
            if text and looks_like_html(text):
                obj["text"] = html_to_text(text)
            yield obj
