"""Input that must never crash a batch or lose data (the reliability issue)."""
import json

from unspin.cli import main


def test_lone_surrogate_in_a_jsonl_row_is_cleaned_and_later_rows_survive(tmp_path, models, capsys):
    rows = tmp_path / "rows.jsonl"
    # json.dumps writes a lone surrogate as the escape \ud800, as other tools do.
    rows.write_text(json.dumps({"id": "odd\ud800", "text": "The police \ud800 mentioned the road was closed."}) + "\n"
                    + json.dumps({"id": 2, "text": "The police mentioned the road was closed."}) + "\n",
                    encoding="utf-8")
    assert main(["check", "--jsonl", str(rows), *models]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in out] == ["odd\ud800", 2]
    assert "\ufffd" in out[0]["restored"] and "error" not in out[0]
    assert out[1]["restored"] == "The police said the road was closed."


def test_every_per_engine_cache_is_bounded(tiny_lm, tiny_channel):
    from unspin.decode import Decoder
    from unspin.fingerprint import Fingerprinter

    decoder = Decoder(tiny_lm, tiny_channel)
    fingerprinter = Fingerprinter(tiny_channel)
    caches = [decoder._key_candidates, decoder._unigram, tiny_channel._candidates_at,
              fingerprinter.canonical, fingerprinter.top_candidates]
    for cache in caches:
        assert cache.cache_info().maxsize is not None
    decoder.decode([])  # and they still work
    assert fingerprinter.canonical("said") == fingerprinter.canonical("said")
