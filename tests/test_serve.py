"""The HTTP API (`unspin.serve`) through FastAPI's test client: the CLI's JSON schema, every error
as application/problem+json, the token rules of index writes, the limits, /docs offline, the page.

The engine is the tiny test model and channel (tests/conftest.py); the texts are written here.
"""
import json
import re
import threading
from dataclasses import replace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from unspin.decode import ChannelWeights, DecoderConfig  # noqa: E402
from unspin.detect import Calibration, Engine  # noqa: E402
from unspin.index import Index  # noqa: E402
from unspin.inputs import InputError  # noqa: E402
from unspin.serve import ServeLimits, create_app  # noqa: E402
from unspin.trace import compare  # noqa: E402

SPUN = "The minister mentioned the scheme would price extra than expected."
RESTORED = "The minister said the plan would cost more than expected."
FOREIGN = "Der Minister sagte, dass der Plan mehr kosten würde als erwartet."
PAGE = f"<!doctype html><html><head><title>Budget</title></head><body><article><p>{SPUN}</p></article></body></html>"
# A reference document (over 40 words, so that a trace of its copy is reliable) and a spun copy of it.
ORIGINAL = ("The minister said the plan would cost more than expected. The police said the road was closed on "
            "monday. The soldiers returned from the front lines after the storm. She said the report was late, and "
            "he said more troops would arrive at the coast next year. Officials said the company would open the "
            "new plant in the north before the winter.")
COPY = ("The minister stated the scheme would price extra than expected. The police mentioned the road was closed "
        "on monday. The infantrymen returned from the entrance traces after the storm. She stated the report was "
        "late, and he mentioned extra troops would arrive at the coast next year. Officials said the company would "
        "open the new plant in the north before the winter.")
UNRELATED = ("A recipe for bread needs flour, water, salt and yeast. Knead the dough for ten minutes, let it rise "
             "twice, and bake it in a hot oven until the crust sounds hollow when you tap it from below.")
TOKEN = "test-token-1234"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def engine(tiny_lm, tiny_channel):
    heavy = DecoderConfig(weights=replace(ChannelWeights(), log_p_sub=-1.6))
    # One pass: with its prior already loose, a spun pass would make every change certain.
    return Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), heavy, spun_prior_boost=None)


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture()
def index_path(tmp_path, tiny_channel):
    path = tmp_path / "refs.sqlite"
    with Index(path, channel=tiny_channel) as idx:
        idx.add([{"id": "budget-1", "text": ORIGINAL}, {"id": "bread", "text": UNRELATED}])
    return path


def _problem(response, status: int, title: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] == title and body["detail"]
    return body


# ---- the API: the CLI's JSON -----------------------------------------------------------------
def test_check_returns_the_clis_json(client, engine):
    r = client.post("/v1/check", json={"text": SPUN})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == json.loads(json.dumps(engine.check(SPUN).to_dict()))
    assert r.json()["restored"] == RESTORED


def test_check_reads_raw_text_and_html_bodies(client):
    plain = client.post("/v1/check", content=SPUN.encode(), headers={"content-type": "text/plain; charset=utf-8"})
    assert plain.status_code == 200 and plain.json()["input_format"] == "text"
    page = client.post("/v1/check", content=PAGE.encode(), headers={"content-type": "text/html"})
    assert page.status_code == 200 and page.json()["input_format"] == "html"
    assert "<p>" not in page.json()["text"] and page.json()["restored"].strip() == RESTORED


def test_restore_lists_the_changes_it_applied(client, engine):
    r = client.post("/v1/restore", json={"text": SPUN})
    assert r.status_code == 200
    body = r.json()
    assert body["restored"] == RESTORED
    assert {(c["text"], c["suggestion"]) for c in body["changes"]} >= {("mentioned", "said"), ("scheme", "plan")}
    confidences = sorted(c["confidence"] for c in body["changes"])
    cut = (confidences[0] + confidences[-1]) / 2
    assert confidences[0] < cut  # the tiny engine's changes differ in confidence: a real threshold to test
    strict = client.post("/v1/restore", json={"text": SPUN, "min_confidence": cut}).json()
    assert strict["restored"] == engine.restore(SPUN, cut).text != RESTORED
    assert strict["changes"] and all(c["confidence"] >= cut for c in strict["changes"])


def test_compare_aligns_two_texts(client, engine):
    r = client.post("/v1/compare", json={"text": COPY, "source": ORIGINAL})
    assert r.status_code == 200
    body = r.json()
    assert body["is_source"] is True and body["coverage"] > 0.9
    assert ["sub_channel", "infantrymen", "soldiers"] in body["alignment"]
    # the same answer as `unspin compare` (trace.compare): segments are character ranges of the copy
    assert body["segments"] == [s.to_dict() for s in compare(COPY, ORIGINAL, channel=engine.channel).segments]
    assert body["segments"] and body["segments"][-1]["end"] <= len(COPY)
    assert COPY[body["segments"][0]["start"]:body["segments"][-1]["end"]].strip()
    other = client.post("/v1/compare", json={"text": COPY, "source": UNRELATED}).json()
    assert other["is_source"] is False


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"ok": True}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["models"] == "loaded" and ready["index"] is None


# ---- errors: application/problem+json with a clear title ---------------------------------------
def test_empty_text_is_a_problem(client):
    _problem(client.post("/v1/check", json={"text": ""}), 422, "Empty")
    _problem(client.post("/v1/check", content=b" \n ", headers={"content-type": "text/plain"}), 422, "Empty")


def test_invalid_utf8_is_a_problem(client):
    _problem(client.post("/v1/check", content=b"caf\xe9 au lait", headers={"content-type": "text/plain"}),
             400, "Not UTF-8")
    _problem(client.post("/v1/check", content=b'{"text": "caf\xe9"}', headers={"content-type": "application/json"}),
             400, "Not UTF-8")


def test_binary_and_broken_json_are_problems(client):
    _problem(client.post("/v1/check", content=b"\x00\x01\x02PNG", headers={"content-type": "text/plain"}),
             400, "Binary data")
    _problem(client.post("/v1/check", content=b'{"text": ', headers={"content-type": "application/json"}),
             400, "Not JSON")
    body = _problem(client.post("/v1/check", json={"txt": SPUN}), 422, "Invalid request")
    assert "text" in body["detail"]
    _problem(client.post("/v1/check", json={"text": SPUN, "min_confidence": 3}), 422, "Invalid request")


def test_too_large_is_a_problem(engine):
    with TestClient(create_app(engine, limits=ServeLimits(max_body_bytes=100))) as small:
        body = _problem(small.post("/v1/check", json={"text": "word " * 50}), 413, "Too large")
        assert "100" in body["detail"]

        def chunks():  # no Content-Length: the cap holds while the body streams in
            for _ in range(10):
                yield b"spun words " * 5

        _problem(small.post("/v1/check", content=chunks(), headers={"content-type": "text/plain"}), 413, "Too large")
        assert small.post("/v1/check", json={"text": SPUN}).status_code == 200


def test_unsupported_type_is_a_problem(client):
    _problem(client.post("/v1/check", content=b"\x89PNG", headers={"content-type": "image/png"}),
             415, "Unsupported type")
    _problem(client.post("/v1/check", content=SPUN.encode()), 415, "Unsupported type")  # no Content-Type


def test_not_english_is_a_problem_carrying_the_result(client):
    body = _problem(client.post("/v1/check", json={"text": FOREIGN}), 422, "Not English")
    assert body["result"]["spin_probability"] is None and body["result"]["spans"] == []


def test_index_not_configured_is_a_problem(client):
    _problem(client.post("/v1/trace", json={"text": COPY}), 404, "Index not configured")


def test_unknown_paths_and_methods_are_problems(client):
    _problem(client.get("/v1/nothing"), 404, "Not found")
    _problem(client.get("/v1/check"), 405, "Method not allowed")


# ---- trace and the index's token rules ---------------------------------------------------------
def test_trace_finds_the_source(engine, index_path):
    with TestClient(create_app(engine, index=index_path)) as c:
        r = c.post("/v1/trace", json={"text": COPY})
        assert r.status_code == 200
        matches = r.json()["matches"]
        assert [m["doc_id"] for m in matches] == ["budget-1"]
        assert ["sub_channel", "scheme", "plan"] in matches[0]["alignment"]
        assert c.get("/readyz").json()["index"] == {"documents": 2}
        _problem(c.post("/v1/trace", json={"text": "  "}), 422, "Empty")


def test_index_writes_are_disabled_without_a_token(engine, index_path):
    with TestClient(create_app(engine, index=index_path)) as c:
        doc = {"documents": [{"id": "new", "text": UNRELATED}]}
        _problem(c.post("/v1/index/documents", json=doc), 403, "Index writes disabled")
        # not even a token the client made up opens them
        _problem(c.post("/v1/index/documents", json=doc, headers={"Authorization": "Bearer anything"}),
                 403, "Index writes disabled")
        _problem(c.delete("/v1/index/documents/budget-1", headers={"Authorization": "Bearer anything"}),
                 403, "Index writes disabled")
    with Index(index_path, create=False) as idx:
        assert len(idx) == 2 and "budget-1" in idx


def test_index_writes_need_the_right_token(engine, index_path):
    with TestClient(create_app(engine, index=index_path, token=TOKEN)) as c:
        doc = {"documents": [{"id": "copy-source", "text": ORIGINAL.replace("monday", "tuesday")}]}
        missing = _problem(c.post("/v1/index/documents", json=doc), 401, "Unauthorized")
        assert missing["type"].endswith("unauthorized")
        r = c.post("/v1/index/documents", json=doc, headers={"Authorization": "Bearer wrong"})
        _problem(r, 401, "Unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        _problem(c.delete("/v1/index/documents/budget-1"), 401, "Unauthorized")

        auth = {"Authorization": f"Bearer {TOKEN}"}
        added = c.post("/v1/index/documents", json=doc, headers=auth)
        assert added.status_code == 200 and added.json()["added"] == 1 and added.json()["documents"] == 3
        bad = c.post("/v1/index/documents", json={"documents": [{"id": "x"}]}, headers=auth)
        _problem(bad, 422, "Invalid request")
        assert c.delete("/v1/index/documents/budget-1", headers=auth).json() == {"removed": 1}
        _problem(c.delete("/v1/index/documents/budget-1", headers=auth), 404, "No such document")
        assert [m["doc_id"] for m in c.post("/v1/trace", json={"text": COPY}).json()["matches"]] == ["copy-source"]
    with Index(index_path, create=False) as idx:  # the writes are in the file
        assert sorted(idx.get(i)["id"] for i in ("bread", "copy-source")) == ["bread", "copy-source"]
        assert "budget-1" not in idx


def test_a_token_without_an_index_is_still_a_clear_problem(client, engine):
    with TestClient(create_app(engine, token=TOKEN)) as c:
        _problem(c.post("/v1/index/documents", json={"documents": [{"id": "a", "text": ORIGINAL}]},
                        headers={"Authorization": f"Bearer {TOKEN}"}), 404, "Index not configured")


def test_a_missing_index_file_is_refused_at_start(engine, tmp_path):
    with pytest.raises(InputError, match="no such index"):
        create_app(engine, index=tmp_path / "missing.sqlite")


# ---- limits: bounded concurrency ----------------------------------------------------------------
class _Gate:
    """Blocks the engine until released, so that requests pile up deterministically."""

    def __init__(self, engine):
        self.engine, self.entered, self.release = engine, threading.Event(), threading.Event()

    def check(self, *args, **kwargs):
        self.entered.set()
        assert self.release.wait(30)
        return self.engine.check(*args, **kwargs)


def test_a_saturated_worker_sheds_requests_with_503(engine, monkeypatch):
    gated = Engine(engine.lm, engine.channel, engine.calibration, engine.config)
    gate = _Gate(engine)
    monkeypatch.setattr(gated, "check", gate.check)
    with TestClient(create_app(gated, limits=ServeLimits(max_pending=1))) as c:
        first = {}
        t = threading.Thread(target=lambda: first.update(r=c.post("/v1/check", json={"text": SPUN})))
        t.start()
        assert gate.entered.wait(30)
        shed = _problem(c.post("/v1/check", json={"text": SPUN}), 503, "Busy")
        assert "retry" in shed["detail"]
        gate.release.set()
        t.join(30)
        assert first["r"].status_code == 200
        assert c.post("/v1/check", json={"text": SPUN}).status_code == 200  # admitted again once it finished


def test_a_request_waiting_too_long_for_the_engine_gets_503(engine, monkeypatch):
    gated = Engine(engine.lm, engine.channel, engine.calibration, engine.config)
    gate = _Gate(engine)
    monkeypatch.setattr(gated, "check", gate.check)
    with TestClient(create_app(gated, limits=ServeLimits(max_pending=4, queue_timeout_s=0.2))) as c:
        first = {}
        t = threading.Thread(target=lambda: first.update(r=c.post("/v1/check", json={"text": SPUN})))
        t.start()
        assert gate.entered.wait(30)
        r = c.post("/v1/check", json={"text": SPUN})
        gate.release.set()
        t.join(30)
        _problem(r, 503, "Busy")
        assert r.headers["retry-after"]
        assert first["r"].status_code == 200


# ---- /docs works offline, the page and its report ----------------------------------------------
def test_docs_use_only_local_assets(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/check", "/v1/restore", "/v1/trace", "/v1/compare", "/v1/index/documents"} <= set(schema["paths"])
    assert "requestBody" in schema["paths"]["/v1/check"]["post"]
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page.text) + re.findall(r"url:\s*'([^']+)'", page.text)
    assert urls and not [u for u in urls if "//" in u], urls  # nothing from a CDN
    for u in urls:
        assert client.get("/" + u.lstrip("/")).status_code == 200, u


def test_the_page_and_its_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="us-text"' in page.text and 'type="file"' in page.text and ">Check</button>" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in re.findall(r"""(?:src|href)="(static/[^"]+)""", page.text):
        r = client.get("/" + asset)
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text, asset


def test_the_page_report_is_the_shared_renderer(client, engine):
    r = client.post("/ui/report?source=budget.txt", json={"text": SPUN})
    assert r.status_code == 200 and r.text.startswith('<section class="us-report"')
    assert '<span class="us-orig">said</span><span class="us-obs">mentioned</span>' in r.text
    # the CLI's page holds the same report
    assert r.text in engine.check(SPUN).to_html("budget.txt")
    _problem(client.post("/ui/report", json={"text": FOREIGN}), 422, "Not English")


def test_the_page_report_shows_sources_with_an_index(engine, index_path):
    with TestClient(create_app(engine, index=index_path)) as c:
        r = c.post("/ui/report", json={"text": COPY})
        assert r.status_code == 200
        assert 'class="us-sources"' in r.text and "budget-1" in r.text and "coverage" in r.text
        assert '<iframe class="us-alignment"' in r.text


# ---- worker processes and the command line ----------------------------------------------------
def test_each_worker_builds_its_app_from_the_environment(tiny_arpa, tiny_channel_path, monkeypatch):
    from unspin.serve import OPTIONS_ENV, TOKEN_ENV, ServeOptions, app_from_environment

    options = ServeOptions(lm=str(tiny_arpa), channel=str(tiny_channel_path), max_body_bytes=500, max_pending=3)
    monkeypatch.setenv(OPTIONS_ENV, options.to_json())
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with TestClient(app_from_environment()) as c:
        from unspin.lexicon import Channel

        same_models = Engine.load(lm_path=str(tiny_arpa), channel=Channel.load(tiny_channel_path))
        assert c.post("/v1/check", json={"text": SPUN}).json() == json.loads(json.dumps(
            same_models.check(SPUN).to_dict()))
        _problem(c.post("/v1/check", json={"text": "word " * 200}), 413, "Too large")
        # the token came from the environment: index writes are enabled, and need it (no index here)
        _problem(c.post("/v1/index/documents", json={"documents": [{"id": "a", "text": ORIGINAL}]}),
                 401, "Unauthorized")


def test_serve_command_refuses_bad_options(tmp_path, capsys):
    from unspin.cli import main

    assert main(["serve", "--index", str(tmp_path / "missing.sqlite")]) == 2
    assert "missing.sqlite" in capsys.readouterr().err
    assert main(["serve", "--queue-timeout", "0"]) == 2
    assert "--queue-timeout" in capsys.readouterr().err
    assert main(["serve", "--port", "0"]) == 2  # argparse: must be at least 1
