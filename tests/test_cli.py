"""The command line: JSON contract, batch rows, and bad input never ending in a traceback."""
import json
import subprocess
import sys

import pytest

from unspin.cli import main
# The tiny model and channel (`models`: their command-line options) come from conftest.py.


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_json_contract(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    text = "The minister mentioned the scheme would cost extra than expected."
    f.write_text(text, encoding="utf-8")
    code, out, err = run(["check", str(f), "--format", "json", *models], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert 0.0 <= doc["spin_probability"] <= 1.0
    assert {(s["text"], s["suggestion"]) for s in doc["spans"]} == {
        ("mentioned", "said"), ("scheme", "plan"), ("extra", "more")}
    for s in doc["spans"]:
        assert text[s["start"]:s["end"]] == s["text"]
    # The restored text applies exactly the suggestions shown with confidence >= 0.5 (the default).
    applied = sorted((s for s in doc["spans"] if s["confidence"] >= 0.5), key=lambda s: -s["start"])
    assert applied
    expected = text
    for s in applied:
        expected = expected[:s["start"]] + s["suggestion"] + expected[s["end"]:]
    assert doc["restored"] == expected


def test_check_jsonl_rows_in_order_with_errors(tmp_path, models, capsys):
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join([
        json.dumps({"id": "a", "text": "The minister mentioned the plan would cost extra than expected."}),
        "{not json",
        json.dumps({"id": "c"}),
        json.dumps({"id": 4, "text": "Officials said the storm would reach the coast on monday."}),
    ]) + "\n", encoding="utf-8")
    # --min-confidence 0.2: the tiny test models are unsure of "extra" -> "more".
    code, out, err = run(["check", "--jsonl", str(f), "--min-confidence", "0.2", *models], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, "c", 4]
    assert "error" in rows[1] and "error" in rows[2]
    assert rows[0]["restored"] == "The minister said the plan would cost more than expected."
    for r in (rows[0], rows[3]):
        assert set(r) >= {"id", "spin_probability", "spans", "restored"}


def test_html_report_is_self_contained(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text("The minister mentioned the plan.", encoding="utf-8")
    out_file = tmp_path / "report.html"
    code, _, err = run(["check", str(f), "--format", "html", "-o", str(out_file), *models], capsys)
    assert code == 0, err
    page = out_file.read_text(encoding="utf-8")
    assert 'class="us-span' in page and "said" in page
    # nothing fetched from elsewhere: no linked script, style sheet, font or image
    assert "<script src" not in page and "<link" not in page and "url(" not in page and "http" not in page


def test_html_input_is_reduced_to_text(tmp_path, models, capsys):
    f = tmp_path / "page.html"
    f.write_text("<html><head><title>t</title></head><body><nav>Home | About</nav><article><p>"
                 "The minister mentioned the plan would cost more than expected. " * 3 +
                 "</p></article></body></html>", encoding="utf-8")
    code, out, err = run(["check", str(f), "--format", "json", *models], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["input_format"] == "html" and "<p>" not in doc["restored"]
    # Offsets index the extracted text: the substituted word is found there.
    assert any(s["text"] == "mentioned" and s["suggestion"] == "said" for s in doc["spans"])


@pytest.mark.parametrize("content,expected", [
    (b"", "no text"),
    (b"\x00\x01\x02binary\x00" * 100, "binary"),
    (b"caf\xe9 au lait \xff\xfe", "UTF-8"),
])
def test_bad_input_gives_clear_message(tmp_path, models, capsys, content, expected):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    code, out, err = run(["check", str(f), "--format", "json", *models], capsys)
    if expected == "no text":
        assert code == 0 and json.loads(out)["verdict"] == "no text"
    else:
        assert code == 2 and expected in err and "Traceback" not in err


def test_huge_file_is_refused_clearly(tmp_path, models, capsys):
    f = tmp_path / "huge.txt"
    line = b"The minister said the plan would cost more than expected.\n"
    f.write_bytes(line * (20_000_000 // len(line) + 1))
    code, out, err = run(["check", str(f), *models], capsys)
    assert code == 2 and "--jsonl" in err and "Traceback" not in err


def test_missing_file(models, capsys):
    code, _, err = run(["check", "/no/such/file.txt", *models], capsys)
    assert code == 2 and "no such file" in err


def test_non_english_text_says_so(tmp_path, models, capsys):
    f = tmp_path / "de.txt"
    f.write_text("Der Minister sagte, dass der Plan viel mehr kosten würde als erwartet wurde.", encoding="utf-8")
    code, out, err = run(["check", str(f), "--format", "json", *models], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["language"] == "non-English" and doc["reliable"] is False and doc["spans"] == []


def test_restore_prints_text(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text("The minister mentioned the plan would cost extra than expected.\n", encoding="utf-8")
    code, out, err = run(["restore", str(f), "--min-confidence", "0.2", *models], capsys)  # as above
    assert code == 0, err
    assert out == "The minister said the plan would cost more than expected.\n"


def test_console_script_runs_from_stdin(models):
    proc = subprocess.run([sys.executable, "-m", "unspin.cli", "check", "-", "--format", "json", *models],
                          input="The police mentioned the road was closed.", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["spans"][0]["suggestion"] == "said"


def test_french_prose_is_not_judged_even_with_known_words(tmp_path, models, capsys):
    # Every word below is in the tiny model's vocabulary or not: the function-word test decides.
    f = tmp_path / "fr.txt"
    f.write_text("Le ministre a dit que le plan coûterait plus cher que prévu, selon les services "
                 "du budget qui ont publié leurs chiffres mardi.", encoding="utf-8")
    code, out, err = run(["check", str(f), "--format", "json", *models], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"].startswith("not English") and doc["spans"] == []
