"""Property-based tests (hypothesis) of the public API and the readers.

For any Unicode string under the size bound: `check` returns, in time proportional to its
length; every span indexes `result.text`; spans are sorted and do not overlap; the JSON form
round-trips; tokens index the text; `restore` leaves alone text the channel cannot touch. For
any bytes given to `unspin index add` as JSONL or CSV: exit 0 or 2, never a traceback.

A longer fuzz run of every reader is in `unspin bench reliability`.
"""
import contextlib
import io
import json
import math
import os
import tempfile
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unspin.cli import main  # noqa: E402
from unspin.detect import Calibration, Engine  # noqa: E402
from unspin.text import tokenize  # noqa: E402

MAX_CHARS = 2000
# Generous: the tiny engine checks a few hundred characters in milliseconds.
SECONDS_PER_CHAR = 0.002
SECONDS_FIXED = 1.0

# UNSPIN_PROPERTY_EXAMPLES=2000 for a longer run (examples per test; the readers get 2/3 of it).
EXAMPLES = int(os.environ.get("UNSPIN_PROPERTY_EXAMPLES", 60))
SETTINGS = settings(deadline=None, max_examples=EXAMPLES, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces that exercise the tokenizer, the sentence splitter and the HTML sniffing, mixed with
# arbitrary characters (lone surrogates included: JSON can carry them).
PIECES = ["The minister mentioned the scheme would price extra.", "the police said the road was closed",
          "Mr. ", "U.S. ", "J. ", "e.g. ", "4, 000", "U. N.", "3.5", "1,000,000", "it's", "’s", " ", "\n", "\n\n",
          "\t", ".", "!", "?", "...", '"', "“", "”", "'", "(", ")", "-", "—", "<html>", "<body>", "<p>", "</p>",
          "<!doctype html>", "&amp;", "\ufeff", "\u200b", "e\u0301", "\ud800", "\udfff", "\x00", "\x1b[31m",
          "ﬁ", "İ", "ß", "日本語", "🙂", "infantrymen", "entrance traces"]
any_char = st.characters(exclude_categories=())  # every code point, surrogates too
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(any_char, max_size=12)), max_size=60) \
    .map("".join).filter(lambda t: len(t) <= MAX_CHARS)


@pytest.fixture(scope="module")
def engine(tiny_lm, tiny_channel):
    return Engine(tiny_lm, tiny_channel, Calibration.uncalibrated())


def _assert_result_sound(result) -> None:
    text = result.text
    prev_end = 0
    starts = [s.start for s in result.spans]
    assert starts == sorted(starts)
    for s in result.spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start:s.end] == s.text
        assert s.start >= prev_end, "spans overlap"
        prev_end = s.end
        assert 0.0 <= s.confidence <= 1.0
    p = result.spin_probability
    assert p is None or (0.0 <= p <= 1.0 and not math.isnan(p))
    d = result.to_dict()
    line = json.dumps(d, ensure_ascii=False, allow_nan=False)
    line.encode("utf-8")
    assert json.loads(line) == d


@SETTINGS
@given(text=texts)
def test_check_holds_for_any_text(engine, text):
    t0 = time.perf_counter()
    result = engine.check(text)
    elapsed = time.perf_counter() - t0
    assert elapsed < SECONDS_FIXED + SECONDS_PER_CHAR * len(text)
    _assert_result_sound(result)
    if result.input_format == "text":  # offsets index the text as given, one character for one
        assert len(result.text) == len(text)
        assert all(a == b or "\ud800" <= a <= "\udfff" for a, b in zip(text, result.text))


@SETTINGS
@given(text=texts)
def test_check_as_plain_text_keeps_every_offset(engine, text):
    result = engine.check(text, html=False)
    assert result.input_format == "text" and len(result.text) == len(text)
    _assert_result_sound(result)


@settings(deadline=None, max_examples=EXAMPLES * 3, database=None)
@given(text=st.text(any_char, max_size=MAX_CHARS) | texts)
def test_tokens_index_the_text_in_order(text):
    prev_end = 0
    for tok in tokenize(text):
        assert prev_end <= tok.start < tok.end <= len(text)
        assert text[tok.start:tok.end] == tok.text
        prev_end = tok.end


# Words the tiny channel has no candidate original for (checked below), in any order.
UNTOUCHABLE = ["the", "road", "was", "closed", "report", "late", "police", "she", "company", "new", "plant",
               "would", "open", "next", "year", "storm", "reach", "coast", "on", "monday"]


def test_untouchable_words_are_untouchable(tiny_channel):
    for w in UNTOUCHABLE:
        assert not tiny_channel.candidates((w,)), w


@SETTINGS
@given(words=st.lists(st.sampled_from(UNTOUCHABLE), min_size=1, max_size=80),
       seps=st.lists(st.sampled_from([" ", " ", " ", ", ", ". ", ".\n", "\n\n"]), min_size=80, max_size=80))
def test_restore_leaves_untouchable_text_alone(engine, words, seps):
    text = "".join(w.capitalize() if i == 0 else w for i, w in enumerate(words[:1])) + "".join(
        sep + w for sep, w in zip(seps, words[1:])) + "."
    restored = engine.restore(text)
    assert restored.text == text and restored.changes == []


# ---- the readers of `unspin index add`: any bytes, exit 0 or 2 --------------------------
JSONL_LINES = st.one_of(
    st.builds(lambda i, t: json.dumps({"id": i, "text": t}),
              st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(), st.booleans(),
                        st.lists(st.integers())),
              st.one_of(st.text(any_char, max_size=80), st.integers(), st.none())),
    st.sampled_from(['{"id": "a", "text": "x \\ud800 y"}', '{"id": "\\udc00", "text": "z"}', "{", "[]", "null", "1",
                     '{"id": NaN, "text": "q"}', '{"id": 1e999, "text": "q"}', "\ufeff{}", '{"text": "no id"}',
                     '{"id": "' + "x" * 300 + '", "text": "long id"}', "\x00\x01\x02"]),
    st.text(any_char, max_size=40),
)


def _lines_bytes(lines, seps, raw):
    out = io.BytesIO()
    for line, sep in zip(lines, seps):
        out.write(line.encode("utf-8", "surrogatepass") + sep)
    return out.getvalue() + raw


jsonl_bytes = st.one_of(st.binary(max_size=600),
                        st.builds(_lines_bytes, st.lists(JSONL_LINES, max_size=12),
                                  st.lists(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\r"]), min_size=12, max_size=12),
                                  st.binary(max_size=20)))
csv_bytes = st.one_of(st.binary(max_size=600),
                      st.builds(lambda header, body: header + body,
                                st.sampled_from([b"id,text\n", b"\xef\xbb\xbfid,text\r\n", b"text,id,extra\n", b"id\n",
                                                 b"", b'"id","text"\n']),
                                st.binary(max_size=400) | st.text(any_char, max_size=300).map(
                                    lambda t: t.encode("utf-8", "surrogatepass"))))


def _index_add(data: bytes, suffix: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "rows" + suffix)
        with open(src, "wb") as f:
            f.write(data)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(["index", "add", "--index", os.path.join(tmp, "i.sqlite"), src, "--no-progress"])
        return rc, err.getvalue() + out.getvalue()


@settings(deadline=None, max_examples=EXAMPLES * 2 // 3, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=jsonl_bytes)
def test_index_add_of_any_jsonl_bytes(data):
    rc, output = _index_add(data, ".jsonl")
    assert rc in (0, 2), output
    assert "internal error" not in output and "Traceback" not in output


@settings(deadline=None, max_examples=EXAMPLES * 2 // 3, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_bytes)
def test_index_add_of_any_csv_bytes(data):
    rc, output = _index_add(data, ".csv")
    assert rc in (0, 2), output
    assert "internal error" not in output and "Traceback" not in output
