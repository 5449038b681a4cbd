"""`unspin index add` inputs: jsonl.gz, CSV, stdin, Parquet columns, bad rows, --strict, --max-bytes.

All texts are made-up sentences written for these tests.
"""
import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unspin.cli import main
from unspin.index import Index, add_inputs
from unspin.inputs import BadRow, InputError, iter_input_docs, validate_input

REPO = Path(__file__).resolve().parent.parent

TEXTS = [
    "The ferry to Tallow Island left late on Monday because a gull had built its nest on the ticket booth.",
    "A retired teacher in Brookfield has knitted scarves for every child in the village school this winter.",
    "Workers repainting the old lighthouse found a tin box of letters that a keeper hid there long ago.",
    "The council promised to fix the broken swings in Elm Park before the summer holidays begin.",
    "Two students built a small robot that sorts glass bottles by colour at the recycling centre.",
    "Fog delayed the morning trains across the valley, and many commuters walked the last few miles.",
]


def add(argv):
    return main(["index", "add", "--no-progress", *argv])


def summary(capsys):
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_jsonl_gz(tmp_path, capsys):
    src = tmp_path / "rows.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        f.write(jsonl([{"id": "g1", "text": TEXTS[0], "lang": "en"}, {"id": "g2", "text": TEXTS[1]}]))
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), str(src)]) == 0
    out, _ = summary(capsys)
    assert out == {"added": 2, "skipped_empty": 0, "skipped_bad": 0, "documents": 2}
    with Index(idx, create=False) as ix:
        assert ix.get("g1") == {"id": "g1", "text": TEXTS[0], "lang": "en"}
        assert ix.get("g2")["text"] == TEXTS[1]


def test_gz_name_but_not_gzip_is_refused(tmp_path, capsys):
    src = tmp_path / "rows.jsonl.gz"
    src.write_text(jsonl([{"id": "a", "text": TEXTS[0]}]))
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), str(src)]) == 2
    assert "not gzip" in capsys.readouterr().err
    assert not idx.exists()


def test_csv_with_custom_columns(tmp_path, capsys):
    src = tmp_path / "docs.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["doc_id", "author", "body"])
        w.writerow(["n1", "Ada", TEXTS[2]])
        w.writerow(["n2", "Bo", "First line, with a comma.\nSecond line of the same note."])
        w.writerow(["n3", "Cy", ""])
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), "--id-column", "doc_id", "--text-column", "body", str(src)]) == 0
    out, err = summary(capsys)
    assert out == {"added": 2, "skipped_empty": 1, "skipped_bad": 0, "documents": 2}
    with Index(idx, create=False) as ix:
        assert ix.get("n1") == {"id": "n1", "text": TEXTS[2], "author": "Ada"}
        assert ix.get("n2")["text"] == "First line, with a comma.\nSecond line of the same note."
        assert ix.get("n3") is None
    # the default columns do not exist in this file: refused at once, nothing created
    idx2 = tmp_path / "j.sqlite"
    assert add(["--index", str(idx2), str(src)]) == 2
    err = capsys.readouterr().err
    assert "'id'" in err and "--id-column" in err and "Traceback" not in err
    assert not idx2.exists()


def test_csv_gz_and_csv_bad_rows(tmp_path, capsys):
    src = tmp_path / "docs.csv.gz"
    raw = ("id,text\n"
           "c1,\"" + TEXTS[3] + "\"\n"
           "c2,\"a quoted field\nthat spans two lines\",extra\n"   # lines 3-4: too many fields
           "c3,caf\xe9 text\n"                                   # line 5: not UTF-8 (latin-1 byte)
           "c4," + TEXTS[4] + "\n").encode("latin-1")
    with gzip.open(src, "wb") as f:
        f.write(raw)
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), str(src)]) == 0
    out, err = summary(capsys)
    assert out["added"] == 2 and out["skipped_bad"] == 2
    assert f"{src}:3: row has 3 fields, the header has 2" in err
    assert f"{src}:5: not valid UTF-8" in err
    with Index(idx, create=False) as ix:
        assert ix.get("c1")["text"] == TEXTS[3] and ix.get("c4")["text"] == TEXTS[4]


def test_stdin_subprocess(tmp_path):
    idx = tmp_path / "i.sqlite"
    rows = jsonl([{"id": "s1", "text": TEXTS[4]}, {"id": "s2", "text": TEXTS[5], "tag": "fog"}])
    done = subprocess.run([sys.executable, "-m", "unspin.cli", "index", "add", "--index", str(idx), "-"],
                          cwd=REPO, input=rows, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"added": 2, "skipped_empty": 0, "skipped_bad": 0, "documents": 2}
    with Index(idx, create=False) as ix:
        assert ix.get("s2") == {"id": "s2", "text": TEXTS[5], "tag": "fog"}


class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_stdin_bad_rows_and_strict(tmp_path, capsys, monkeypatch):
    idx = tmp_path / "i.sqlite"
    data = (jsonl([{"id": "s1", "text": TEXTS[0]}]) + "this is not json\n" + jsonl([{"id": "s3", "text": TEXTS[1]}]))
    monkeypatch.setattr(sys, "stdin", FakeStdin(data.encode()))
    assert add(["--index", str(idx), "-"]) == 0
    out, err = summary(capsys)
    assert out == {"added": 2, "skipped_empty": 0, "skipped_bad": 1, "documents": 2}
    assert "stdin:2: row is not valid JSON" in err
    # strict: stdin is read in full first; the bad row stops the run and nothing is written
    idx2 = tmp_path / "strict.sqlite"
    monkeypatch.setattr(sys, "stdin", FakeStdin(data.encode()))
    assert add(["--index", str(idx2), "--strict", "-"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stdin:2" in err[0] and "nothing was written" in err[0]
    assert not idx2.exists()
    # stdin cannot be read twice
    assert add(["--index", str(idx2), "-", "-"]) == 2
    assert "once" in capsys.readouterr().err


def test_bad_rows_are_reported_with_row_numbers_and_skipped(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    lines = [
        json.dumps({"id": "ok1", "text": TEXTS[0]}),          # 1
        "{broken",                                              # 2 not JSON
        json.dumps(["a", "list"]),                              # 3 not an object
        json.dumps({"text": TEXTS[1]}),                         # 4 no id
        json.dumps({"id": "t5", "text": 42}),                   # 5 text not a string
        "",                                                     # 6 blank: ignored
        json.dumps({"id": "ok7", "text": TEXTS[2]}),          # 7
    ]
    data = "\n".join(lines).encode() + b"\n" + b'{"id": "u8", "text": "bad \xff byte"}\n'  # 8 invalid UTF-8
    src.write_bytes(data)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "good.md").write_text(TEXTS[3])
    (folder / "junk.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), str(src), str(folder)]) == 0
    out, err = summary(capsys)
    assert out == {"added": 3, "skipped_empty": 0, "skipped_bad": 6, "documents": 3}
    for line_no, why in ((2, "not valid JSON"), (3, "not a JSON object"), (4, "no 'id'"),
                         (5, "'text' is a number, not a string"), (8, "not valid UTF-8")):
        assert f"{src}:{line_no}: " in err and why in err
    assert f"{folder / 'junk.txt'}: looks like a binary file" in err
    assert ":6:" not in err and ":1:" not in err and ":7:" not in err
    assert "skipped 6 bad rows" in err
    with Index(idx, create=False) as ix:
        assert "ok1" in ix and "ok7" in ix and "good.md" in ix and "junk.txt" not in ix


def test_strict_writes_nothing_and_leaves_no_index(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl([{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)]))
    bad = tmp_path / "late_bad.jsonl"
    bad.write_text(jsonl([{"id": "x1", "text": TEXTS[0]}, {"id": "x2", "text": TEXTS[1]}]) + '{"id": "x3"}\n')
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), "--strict", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:3" in err[0] and "no 'text'" in err[0]
    assert not idx.exists() and not Path(str(idx) + "-wal").exists()
    # an existing index is left exactly as it was
    with Index(idx) as ix:
        ix.add([{"id": "keep", "text": TEXTS[5]}])
    assert add(["--index", str(idx), "--strict", str(good), str(bad)]) == 2
    with Index(idx, create=False) as ix:
        assert len(ix) == 1 and "keep" in ix
    # without the bad row, strict mode adds everything
    assert add(["--index", str(idx), "--strict", str(good)]) == 0
    out, _ = summary(capsys)
    assert out["added"] == len(TEXTS) and out["documents"] == len(TEXTS) + 1 and out["skipped_bad"] == 0


def test_failed_run_leaves_no_index_file(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl([{"id": "a", "text": TEXTS[0]}]))
    idx = tmp_path / "i.sqlite"
    for inputs in ([str(good), str(tmp_path / "missing.jsonl")], [str(good), str(tmp_path / "x.docx")]):
        (tmp_path / "x.docx").write_text("not a format unspin reads")
        assert add(["--index", str(idx), *inputs]) == 2
        assert not idx.exists()
    assert add(["--index", str(tmp_path / "no" / "dir" / "i.sqlite"), str(good)]) == 2
    assert not (tmp_path / "no").exists()
    # an interrupted run that wrote nothing removes the file it created
    def boom():
        yield {"id": "a", "text": TEXTS[0]}
        raise KeyboardInterrupt

    ix = Index(tmp_path / "new.sqlite")
    assert ix.created and (tmp_path / "new.sqlite").exists()
    with pytest.raises(KeyboardInterrupt):
        ix.add(boom())
    ix.abandon()
    assert not (tmp_path / "new.sqlite").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_oversize_row_is_skipped(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    long_text = " ".join([TEXTS[0]] * 5)  # about 500 bytes
    src.write_text(jsonl([{"id": "short", "text": TEXTS[1]}, {"id": "long", "text": long_text}]))
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "big.txt").write_text(long_text)
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), "--max-bytes", "300", str(src), str(folder)]) == 0
    out, err = summary(capsys)
    assert out == {"added": 1, "skipped_empty": 0, "skipped_bad": 2, "documents": 1}
    assert f"{src}:2: 'text' is {len(long_text.encode()):,} bytes, over the limit of 300" in err
    assert f"{folder / 'big.txt'}: larger than 300 bytes" in err
    with Index(idx, create=False) as ix:
        assert "short" in ix and "long" not in ix
    assert add(["--index", str(idx), "--max-bytes", "0", str(src)]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_parquet_custom_columns_and_null_text(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"key": [10, 11, 12], "content": [TEXTS[4], None, TEXTS[5]],
                             "year": [2020, 2021, 2022]}), path)
    idx = tmp_path / "p.sqlite"
    assert add(["--index", str(idx), "--id-column", "key", "--text-column", "content", str(path)]) == 0
    out, err = summary(capsys)
    assert out == {"added": 2, "skipped_empty": 0, "skipped_bad": 1, "documents": 2}
    assert f"{path}:2: 'content' is null, not a string" in err
    with Index(idx, create=False) as ix:
        assert ix.get("10") == {"id": "10", "text": TEXTS[4], "year": 2020}
    assert add(["--index", str(tmp_path / "q.sqlite"), str(path)]) == 2
    assert "'id' and 'text' columns" in capsys.readouterr().err
    assert not (tmp_path / "q.sqlite").exists()


def test_library_reports_bad_rows_through_callbacks(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text(jsonl([{"id": "a", "text": TEXTS[0]}]) + "[1, 2]\n" + jsonl([{"id": "c", "text": TEXTS[2]}]))
    bad: list[BadRow] = []
    docs = list(iter_input_docs(str(src), on_bad=bad.append))
    assert [d["id"] for d in docs] == ["a", "c"]
    assert bad == [BadRow(str(src), 2, "row is a list, not a JSON object")]
    with pytest.raises(InputError, match=":2: "):  # without a callback a bad row raises
        list(iter_input_docs(str(src)))
    with pytest.raises(InputError, match=":2: "):
        validate_input(str(src))
    progress: list[int] = []
    seen: list[BadRow] = []
    result = add_inputs(tmp_path / "i.sqlite", [str(src)], on_bad=seen.append, progress=progress.append)
    assert result.to_dict() == {"added": 2, "skipped_empty": 0, "skipped_bad": 1, "documents": 2}
    assert seen == bad and progress == [2]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # library code never prints


def test_csv_field_over_the_csv_module_limit_is_one_bad_row(tmp_path, capsys):
    # 180,000 bytes over many lines: more than the csv module's own 131,072-character field limit
    big = "\n".join([TEXTS[5]] * 1800)
    src = tmp_path / "big.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerow(["huge", big])
        w.writerow(["after", TEXTS[0]])
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), "--max-bytes", "150000", str(src)]) == 0
    out, err = summary(capsys)
    assert out == {"added": 1, "skipped_empty": 0, "skipped_bad": 1, "documents": 1}
    assert f"{src}:2: 'text' is {len(big.encode()):,} bytes, over the limit of 150,000" in err
    with Index(idx, create=False) as ix:
        assert ix.get("after")["text"] == TEXTS[0] and len(ix) == 1  # no fragments of the big field


def test_unpaired_surrogate_escapes_are_cleaned_in_text_and_refused_in_ids(tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"id": "s1", "text": "A broken \\ud800 escape in a sentence."}\n'
                   '{"id": "s2", "text": "' + TEXTS[1] + '", "note": "\\udfff"}\n'
                   '{"id": "s3 \\udc00", "text": "' + TEXTS[3] + '"}\n'
                   + jsonl([{"id": "s4", "text": TEXTS[2]}]))
    idx = tmp_path / "i.sqlite"
    assert add(["--index", str(idx), str(src)]) == 0
    out, err = summary(capsys)
    assert out["added"] == 2 and out["skipped_bad"] == 2
    assert f"{src}:2: " in err and f"{src}:3: " in err and "surrogate" in err and "internal error" not in err
    with Index(idx, create=False) as ix:
        assert ix.get("s1")["text"] == "A broken \ufffd escape in a sentence." and "s4" in ix
