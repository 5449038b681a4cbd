"""The command line behaves like a well-made Unix tool: one parser tree with help everywhere,
exit codes a script can use, refused out-of-range values, safe outputs, progress only on request."""
import argparse
import json
import re
import subprocess
import sys

import pytest

import unspin
from unspin.cli import build_parser, main

SPUN = "The minister mentioned the scheme would cost extra than expected."
GENUINE = "The minister said the plan would cost more than expected."


def _subparsers(parser: argparse.ArgumentParser):
    """(parser, its sub-parsers' names) for every parser in the tree, depth first."""
    yield parser
    for action in parser._actions:  # argparse offers no public walk over its tree
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"unspin {unspin.__version__}"


def test_every_subcommand_is_named_unspin_and_every_option_has_help():
    parsers = list(_subparsers(build_parser()))
    assert len(parsers) > 15  # check, restore, trace, index add|stats|remove, bench core|all|trace, ...
    for p in parsers:
        assert p.prog.startswith("unspin"), p.prog
        assert "python -m" not in p.format_help()
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help text"


def test_help_of_a_subcommand_shows_unspin_prefix(capsys):
    assert main(["index", "add", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: unspin index add")


@pytest.mark.parametrize("args", [
    ["check", "x.txt", "--min-confidence", "5"],
    ["check", "x.txt", "--min-confidence", "-0.1"],
    ["check", "x.txt", "--max-bytes", "-5"],
    ["check", "x.txt", "--spun-at", "1.5"],
    ["trace", "x.txt", "--index", "i.sqlite", "--top", "0"],
    ["trace", "x.txt", "--index", "i.sqlite", "--min-coverage", "2"],
    ["check", "x.txt", "--fail-on", "maybe"],
])
def test_out_of_range_values_are_usage_errors(args, capsys):
    assert main(args) == 2
    assert "error:" in capsys.readouterr().err


def test_thresholds_out_of_order_are_refused(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text(GENUINE, encoding="utf-8")
    code = main(["check", str(f), "--likely-at", "0.95", "--spun-at", "0.9", *models])
    assert code == 2 and "thresholds" in capsys.readouterr().err


def test_fail_on_exits_1_only_when_the_verdict_is_reached(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text(GENUINE, encoding="utf-8")  # its spin probability lies strictly between 0 and 1
    likely_not_spun = ["--spun-at", "1", "--likely-at", "0", "--possibly-at", "0"]
    all_spun = ["--spun-at", "0", "--likely-at", "0", "--possibly-at", "0"]
    assert main(["check", str(f), "--fail-on", "spun", *all_spun, *models]) == 1
    assert main(["check", str(f), "--fail-on", "spun", *likely_not_spun, *models]) == 0
    assert main(["check", str(f), "--fail-on", "likely", *likely_not_spun, *models]) == 1
    assert main(["check", str(f), "--fail-on", "likely", "--spun-at", "1", "--likely-at", "1", "--possibly-at", "0",
                 *models]) == 0
    assert main(["check", str(f), *all_spun, *models]) == 0  # without --fail-on the verdict never sets the status
    capsys.readouterr()


def test_fail_on_in_a_batch(tmp_path, models, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": 1, "text": SPUN}) + "\n" + json.dumps({"id": 2, "text": GENUINE}) + "\n",
                    encoding="utf-8")
    assert main(["check", "--jsonl", str(rows), "--fail-on", "spun", "--spun-at", "0", "--likely-at", "0",
                 "--possibly-at", "0", *models]) == 1
    out = capsys.readouterr().out
    assert [json.loads(line)["id"] for line in out.splitlines()] == [1, 2]


def test_verdict_follows_the_threshold_options(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text(GENUINE, encoding="utf-8")
    for options, expected in ((["--spun-at", "0", "--likely-at", "0", "--possibly-at", "0"], "spun"),
                              (["--spun-at", "1", "--likely-at", "0", "--possibly-at", "0"], "likely spun"),
                              (["--spun-at", "1", "--likely-at", "1", "--possibly-at", "0"], "possibly spun"),
                              (["--spun-at", "1", "--likely-at", "1", "--possibly-at", "1"], "not spun")):
        assert main(["check", str(f), "--format", "json", *options, *models]) == 0
        assert json.loads(capsys.readouterr().out)["verdict"] == expected, options


def test_output_equal_to_input_is_refused_and_input_kept(tmp_path, models, capsys):
    rows = tmp_path / "rows.jsonl"
    content = json.dumps({"id": 1, "text": SPUN}) + "\n"
    rows.write_text(content, encoding="utf-8")
    assert main(["check", "--jsonl", str(rows), "-o", str(rows), *models]) == 2
    assert "input" in capsys.readouterr().err
    assert rows.read_text(encoding="utf-8") == content


def test_output_to_a_folder_or_missing_folder_is_refused_before_work(tmp_path, models, capsys):
    f = tmp_path / "in.txt"
    f.write_text(SPUN, encoding="utf-8")
    assert main(["check", str(f), "-o", str(tmp_path), *models]) == 2
    assert "folder" in capsys.readouterr().err
    assert main(["check", str(f), "-o", str(tmp_path / "nowhere" / "out.json"), *models]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_output_file_is_complete_and_stdout_holds_only_results(tmp_path, models, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "text": SPUN}) + "\n" for i in range(3)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["check", "--jsonl", str(rows), "-o", str(out), *models]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [0, 1, 2]
    assert not list(tmp_path.glob(".out.jsonl.*"))  # no temporary file left behind


def test_progress_only_when_asked_for_off_a_terminal(tmp_path, models):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "text": SPUN}) + "\n" for i in range(3)), encoding="utf-8")
    base = [sys.executable, "-m", "unspin.cli", "check", "--jsonl", str(rows), *models]
    quiet = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "check:" not in quiet.stderr and "doc/s" not in quiet.stderr
    loud = subprocess.run([*base, "--progress"], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and re.search(r"check: 3 ?doc", loud.stderr), loud.stderr
    assert loud.stdout == quiet.stdout  # progress never touches the results


def test_html_flag_decides_how_a_text_file_is_read(tmp_path, models, capsys):
    f = tmp_path / "note.txt"
    f.write_text("<html><body><p>" + GENUINE + "</p></body></html>", encoding="utf-8")
    assert main(["check", str(f), "--format", "json", *models]) == 0
    as_text = json.loads(capsys.readouterr().out)
    assert as_text["input_format"] == "text"
    assert main(["check", str(f), "--format", "json", "--html", *models]) == 0
    as_html = json.loads(capsys.readouterr().out)
    assert as_html["input_format"] == "html" and "<p>" not in as_html["restored"]
