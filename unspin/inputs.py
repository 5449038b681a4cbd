"""Reading user input safely: files, stdin, HTML, JSONL rows.

Every failure becomes an `InputError` with a message a person can act on; the
CLI prints it and exits with status 2 instead of a traceback.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .text import is_mostly_text

# One document larger than this is refused (decoding runs at a few thousand words a
# second); a corpus belongs in --jsonl rows, one document each.
MAX_DOCUMENT_BYTES = 2_000_000


class InputError(ValueError):
    """Input that unspin cannot read, with the reason."""


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


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<!doctype html" in head or ("<body" in head and "</" in text)


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


def read_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """Read FILE (or `-` for stdin) as text; HTML files are reduced to their main text."""
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
    text = decode_bytes(data, name)
    if path.lower().endswith((".html", ".htm")) or looks_like_html(text):
        text = html_to_text(text)
    return text


@dataclass
class Row:
    """One JSONL input row: its id and text, or the reason it could not be read."""

    line_no: int
    id: Any
    text: str | None
    error: str | None = None


def read_jsonl_rows(path: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Iterator[Row]:
    """Rows `{"id": ..., "text": ...}`; a bad row comes back with `error` set, the run goes on."""
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
            if not isinstance(text, str):
                yield Row(line_no, row_id, None, "row has no string field 'text'")
            elif len(text.encode("utf-8", "surrogatepass")) > max_bytes:
                yield Row(line_no, row_id, None, f"text larger than {max_bytes:,} bytes")
            else:
                if looks_like_html(text):
                    text = html_to_text(text)
                yield Row(line_no, row_id, text)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def map_jsonl(in_path: str, out_path: str | None, handle: Callable[[str], dict],
              max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
    """Batch mode: one JSON row out per row in, in order; `handle(text)` gives a row's fields, and
    a row that cannot be read gives {"id", "error", "line"} while the run goes on."""
    if in_path != "-" and not Path(in_path).is_file():
        raise InputError(f"{in_path}: no such file")
    out = open(out_path, "w", encoding="utf-8") if out_path else sys.stdout
    try:
        for row in read_jsonl_rows(in_path, max_bytes):
            if row.error:
                rec = {"id": row.id, "error": row.error, "line": row.line_no}
            else:
                rec = {"id": row.id, **handle(row.text)}
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()


def run_command(prog: str, command: Callable[[], int | None],
                user_errors: tuple[type[BaseException], ...] = (InputError,)) -> int:
    """Run one command-line action: a user error becomes one line on stderr and exit status 2,
    never a traceback; a closed pipe (`| head`) is a normal end."""
    try:
        return command() or 0
    except user_errors as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
