"""The HTTP API and the web page: a FastAPI app over a loaded `Engine` (and, optionally, an index).

    unspin serve [--index refs.sqlite] [--host 127.0.0.1] [--port 8000] [--workers N] [--token T]

`create_app(engine, index=None, token=None)` builds the app; the models are loaded before (by
the caller, or once per worker by `app_from_environment`), never per request. JSON in and out, the
same schema as the CLI's `--format json`; every error is `application/problem+json`.

Limits: a request body over `max_body_bytes` is refused (413); at most `max_pending` requests per
worker are admitted at once (running or waiting for the engine), the next gets 503 with
Retry-After at once rather than a place in a queue; a request that waits longer than
`queue_timeout_s` for the engine also gets 503; the engine's own `time_budget_s` caps the time
one text may take (the rest is left unjudged and the result's warnings say so).

>>> app = create_app(Engine.load(), index="refs.sqlite", token="s3cret")   # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .detect import DEFAULT_MIN_CONFIDENCE, NO_TEXT, NOT_ENGLISH, CheckResult, Engine
from .fingerprint import Fingerprinter, words_of
from .index import Index
from .inputs import MAX_DOCUMENT_BYTES, InputError, decode_bytes, reduce_input
from .report import STATIC_DIR, render_alignment_html, render_report, render_sources
from .trace import MIN_COVERAGE, SubstitutionJudge, accepts, compare, restorations_from_sources, source_text

PROBLEM_TYPE = "https://unspin.invalid/problems/"  # problem `type` URIs: a name, not a page to fetch
DEFAULT_MAX_PENDING = 4
DEFAULT_QUEUE_TIMEOUT_S = 30.0
# Where `unspin serve` hands its options to the worker processes uvicorn starts.
OPTIONS_ENV = "UNSPIN_SERVE_OPTIONS"
TOKEN_ENV = "UNSPIN_TOKEN"


@dataclass(frozen=True)
class ServeLimits:
    """What one worker accepts.

    >>> ServeLimits().max_body_bytes
    2000000
    """

    max_body_bytes: int = MAX_DOCUMENT_BYTES
    max_pending: int = DEFAULT_MAX_PENDING        # requests admitted at once (running or waiting)
    queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S  # longest wait for the engine before a 503

    def __post_init__(self):
        if self.max_body_bytes < 1 or self.max_pending < 1 or not self.queue_timeout_s > 0:
            raise ValueError(f"serve limits must be positive, got {self}")


# ---- requests -----------------------------------------------------------------------------
class TextRequest(BaseModel):
    """A text to check or restore."""

    text: str = Field(description="the text (plain text, or an HTML page: see `html`)")
    html: bool | None = Field(None, description="true: an HTML page, reduced to its main text; false: plain text; "
                                                "null: HTML only when the text is clearly an HTML document")
    min_confidence: float = Field(DEFAULT_MIN_CONFIDENCE, ge=0, le=1,
                                  description="apply (restore) a suggestion only at or above this confidence")


class TraceRequest(BaseModel):
    """A text whose sources to find in the index."""

    text: str
    html: bool | None = None
    top: int = Field(5, ge=1, le=100, description="report at most this many sources")
    min_coverage: float = Field(MIN_COVERAGE, ge=0, le=1,
                                description="a source must explain at least this share of the query's words")


class CompareRequest(BaseModel):
    """Two texts: is `source` the original of `text`?"""

    text: str = Field(description="the suspected spun copy")
    source: str = Field(description="the suspected original")
    html: bool | None = None
    min_coverage: float = Field(MIN_COVERAGE, ge=0, le=1)


class IndexDocuments(BaseModel):
    """Documents to add to the index (an existing id is replaced)."""

    documents: list[dict[str, Any]] = Field(description='[{"id": str, "text": str, ...metadata}]', min_length=1)


# ---- problems -----------------------------------------------------------------------------
class Problem(Exception):
    """An error answered as `application/problem+json` (RFC 9457).

    >>> Problem(413, "Too large", "over 2,000,000 bytes").body()["title"]
    'Too large'
    """

    def __init__(self, status: int, title: str, detail: str = "", kind: str | None = None,
                 headers: dict[str, str] | None = None, **extra):
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return {"type": PROBLEM_TYPE + self.kind, "title": self.title, "status": self.status,
                "detail": self.detail, **self.extra}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers,
                            media_type="application/problem+json")


def _json_media(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) past `max_bytes` without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Problem(413, "Too large", f"the body is {int(declared):,} bytes; the limit is {max_bytes:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Problem(413, "Too large", f"the body is over the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_request(request: Request, model: type[BaseModel], max_bytes: int) -> BaseModel:
    """A request model from JSON, or from a raw text/plain or text/html body (the text itself;
    text/html is read as an HTML page). Problems: 413 too large, 415 unsupported type, 400 not
    UTF-8 / not JSON, 422 invalid fields."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (_json_media(content_type) or content_type in ("text/plain", "text/html")):
        raise Problem(415, "Unsupported type",
                      f"send application/json ({{\"text\": ...}}), text/plain or text/html, not "
                      f"{content_type or 'a body without a Content-Type'}")
    data = await read_body(request, max_bytes)
    if _json_media(content_type):
        try:
            payload = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise Problem(400, "Not UTF-8", f"the body is not valid UTF-8 (byte {err.start})") from None
        except ValueError as err:
            raise Problem(400, "Not JSON", f"the body is not valid JSON ({err})") from None
    else:
        try:
            text = decode_bytes(data, "the body")
        except InputError as err:
            kind = "Not UTF-8" if "UTF-8" in str(err) else "Binary data"
            raise Problem(400, kind, str(err)) from None
        payload = {"text": text, "html": content_type == "text/html"}
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise Problem(422, "Invalid request", "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in err.errors()),
            errors=json.loads(err.json(include_url=False, include_input=False))) from None


def _openapi_body(model: type[BaseModel]) -> dict:
    """The OpenAPI requestBody of an endpoint that reads `model` as JSON (or raw text)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema},
        "text/plain": {"schema": {"type": "string"}},
        "text/html": {"schema": {"type": "string"}}}}}


def _require_text(result: CheckResult) -> CheckResult:
    """422 problems for what the engine cannot judge: no words, or not English."""
    if result.verdict == NO_TEXT:
        raise Problem(422, "Empty", "the text holds no words", result=result.to_dict())
    if result.verdict == NOT_ENGLISH:
        raise Problem(422, "Not English", "; ".join(result.warnings) or "the models read English only",
                      result=result.to_dict())
    return result


# ---- the work: admission, the engine, the index ------------------------------------------
class Worker:
    """Runs engine and index work off the event loop: the engine one text at a time (its caches are
    not made for threads), the index on its own thread (an SQLite connection belongs to one thread).
    `pending` counts the requests `Admission` let in."""

    def __init__(self, engine: Engine, index_path: str | None, limits: ServeLimits):
        self.engine = engine
        self.limits = limits
        self.pending = 0
        self.served = 0
        self._engine_lock = threading.Lock()
        self.index_path = index_path
        self._index: Index | None = None
        self._index_thread = ThreadPoolExecutor(1, thread_name_prefix="unspin-index") if index_path else None
        fingerprinter = Fingerprinter(engine.channel)
        self.judge = SubstitutionJudge(engine.channel, fingerprinter.canonical)

    async def run(self, fn: Callable[[], Any], use_index: bool = False) -> Any:
        """`fn()` on a thread holding the engine (or `fn(index)` on the index thread); requests are
        admitted before (`Admission`)."""
        loop = asyncio.get_running_loop()
        if use_index:
            return await loop.run_in_executor(self._index_thread, self._with_index(fn))
        return await loop.run_in_executor(None, self._with_engine(fn, time.monotonic()))

    def _with_engine(self, fn: Callable[[], Any], admitted: float) -> Callable[[], Any]:
        def call():
            wait = self.limits.queue_timeout_s - (time.monotonic() - admitted)
            if wait <= 0 or not self._engine_lock.acquire(timeout=wait):
                raise Problem(503, "Busy", f"waited {self.limits.queue_timeout_s:g} s for the engine; retry later",
                              headers={"Retry-After": "2"})
            try:
                return fn()
            finally:
                self._engine_lock.release()
        return call

    def _with_index(self, fn: Callable[[Index], Any]) -> Callable[[], Any]:
        def call():
            if self._index is None:  # opened on the index thread, once
                self._index = Index(self.index_path, channel=self.engine.channel, create=False)
            return fn(self._index)
        return call

    def close(self) -> None:
        if self._index_thread is not None:
            def shut():
                if self._index is not None:
                    self._index.close()
            self._index_thread.submit(shut).result()
            self._index_thread.shutdown()


class Admission:
    """ASGI middleware: admits at most `worker.limits.max_pending` POST and DELETE requests at once
    and answers the next with 503 before reading its body, so shedding costs almost nothing."""

    def __init__(self, app, worker: Worker):
        self.app, self.worker = app, worker

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "DELETE"):
            return await self.app(scope, receive, send)
        w = self.worker
        if w.pending >= w.limits.max_pending:
            busy = Problem(503, "Busy", f"{w.pending} requests are in progress (the limit of this worker); "
                           f"retry shortly", headers={"Retry-After": "1"})
            return await busy.response()(scope, receive, send)
        w.pending += 1
        try:
            await self.app(scope, receive, send)
        finally:
            w.pending -= 1
            w.served += 1


def _index_path(index) -> str | None:
    if index is None:
        return None
    if isinstance(index, Index):
        return index.path
    return os.fspath(index)


def _check_token(credentials: HTTPAuthorizationCredentials | None, token: str | None) -> None:
    """Index writes: 403 when the server has no token (writes disabled), 401 without the right one."""
    if not token:
        raise Problem(403, "Index writes disabled", "this server was started without a token; start it with "
                      f"--token or {TOKEN_ENV} to allow adding and removing documents")
    given = credentials.credentials.strip() if credentials is not None else ""
    if credentials is None or credentials.scheme.lower() != "bearer" or not hmac.compare_digest(
            given.encode(), token.encode()):
        raise Problem(401, "Unauthorized", "send the server's token as 'Authorization: Bearer TOKEN'",
                      headers={"WWW-Authenticate": 'Bearer realm="unspin index"'})


def _swagger_dir() -> Path | None:
    """Swagger UI's files from the `swagger-ui-bundle` package, when it is installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").exists() else None


# ---- the app ------------------------------------------------------------------------------
def create_app(engine: Engine, index: Index | str | os.PathLike | None = None, token: str | None = None,
               limits: ServeLimits = ServeLimits()) -> FastAPI:
    """The FastAPI app over a loaded engine. `index`: an `Index` or the path of one (opened again on
    the app's own index thread), None for no trace. `token`: the bearer token that index writes
    need (None: index writes disabled).

    >>> from fastapi.testclient import TestClient                        # doctest: +SKIP
    >>> client = TestClient(create_app(Engine.load()))                   # doctest: +SKIP
    >>> client.post("/v1/check", json={"text": "The minister mentioned the plan."}).json()["verdict"]  # doctest: +SKIP
    'likely spun'
    """
    index_path = _index_path(index)
    if index_path is not None and not Path(index_path).exists():
        raise InputError(f"{index_path}: no such index (build one with `unspin index add`)")
    worker = Worker(engine, index_path, limits)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        worker.close()

    app = FastAPI(title="unspin", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Catch machine-spun text and undo it: check, restore, trace, compare. "
                              "Errors are application/problem+json.")
    # Swagger UI 4 (the offline bundle) reads OpenAPI 3.0 documents; the schemas here need nothing newer.
    app.openapi_version = "3.0.3"
    app.state.worker = worker
    app.add_middleware(Admission, worker=worker)

    @app.exception_handler(Problem)
    async def on_problem(_request: Request, err: Problem):
        return err.response()

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, err: StarletteHTTPException):
        titles = {404: "Not found", 405: "Method not allowed"}
        return Problem(err.status_code, titles.get(err.status_code, "HTTP error"), str(err.detail),
                       headers=getattr(err, "headers", None)).response()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, err: RequestValidationError):
        return Problem(422, "Invalid request", "; ".join(e.get("msg", "") for e in err.errors())).response()

    @app.exception_handler(Exception)
    async def on_error(_request: Request, err: Exception):  # the last resort: never a traceback
        return Problem(500, "Internal error", f"{type(err).__name__}: {err} (please report it)").response()

    def _problem_from(err: Exception) -> Problem:
        return Problem(422, "Invalid request", str(err))

    def check_text(req: TextRequest) -> CheckResult:
        return _require_text(engine.check(req.text, req.min_confidence, html=req.html))

    # -- the API
    @app.post("/v1/check", tags=["api"], summary="How likely a text is spun, its spans and their originals",
              openapi_extra=_openapi_body(TextRequest))
    async def api_check(request: Request) -> JSONResponse:
        req = await parse_request(request, TextRequest, limits.max_body_bytes)
        result = await worker.run(lambda: check_text(req))
        return JSONResponse(result.to_dict())

    @app.post("/v1/restore", tags=["api"], summary="The likely original wording and the changes applied",
              openapi_extra=_openapi_body(TextRequest))
    async def api_restore(request: Request) -> JSONResponse:
        req = await parse_request(request, TextRequest, limits.max_body_bytes)
        result = await worker.run(lambda: check_text(req))
        applied = [s.to_dict() for s in result.spans
                   if s.suggestion is not None and s.confidence >= req.min_confidence]
        return JSONResponse({"restored": result.restored, "changes": applied, "input_format": result.input_format,
                             **({"text": result.text} if result.input_format == "html" else {}),
                             "warnings": result.warnings})

    # Declares the bearer scheme in OpenAPI (Swagger's "Authorize"); the check itself is _check_token.
    bearer = HTTPBearer(auto_error=False, description=f"the server's token (--token or {TOKEN_ENV})")

    def need_index() -> None:
        if index_path is None:
            raise Problem(404, "Index not configured", "this server has no trace index; start it with "
                          "`unspin serve --index PATH`")

    @app.post("/v1/trace", tags=["api"], summary="The sources of a spun copy in the index, with alignments",
              openapi_extra=_openapi_body(TraceRequest))
    async def api_trace(request: Request) -> JSONResponse:
        need_index()
        req = await parse_request(request, TraceRequest, limits.max_body_bytes)
        text, fmt = reduce_input(req.text, req.html)
        if not words_of(text):
            raise Problem(422, "Empty", "the text holds no words")
        matches = await worker.run(lambda idx: idx.trace(text, top=req.top, min_coverage=req.min_coverage),
                                   use_index=True)
        return JSONResponse({"input_format": fmt, "matches": [m.to_dict(alignment=True) for m in matches]})

    @app.post("/v1/compare", tags=["api"], summary="Align a suspected copy with a suspected original",
              openapi_extra=_openapi_body(CompareRequest))
    async def api_compare(request: Request) -> JSONResponse:
        req = await parse_request(request, CompareRequest, limits.max_body_bytes)
        text, _ = reduce_input(req.text, req.html)
        source, _ = reduce_input(req.source, req.html)
        query_words, source_words = words_of(text), words_of(source)
        if not query_words or not source_words:
            raise Problem(422, "Empty", f"the {'text' if not query_words else 'source'} holds no words")
        match = await worker.run(lambda: compare(text, source, source_id="source", judge=worker.judge))
        return JSONResponse({"is_source": accepts(match, len(query_words), req.min_coverage),
                             **match.to_dict(alignment=True)})

    @app.post("/v1/index/documents", tags=["index"], summary="Add or replace documents (bearer token)",
              openapi_extra=_openapi_body(IndexDocuments))
    async def api_index_add(request: Request,
                            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> JSONResponse:
        _check_token(credentials, token)
        need_index()
        req = await parse_request(request, IndexDocuments, limits.max_body_bytes)

        def add(idx: Index) -> dict:
            try:
                written = idx.add(req.documents)
            except (TypeError, InputError) as err:
                raise _problem_from(err) from None
            return {"added": written, "skipped_empty": idx.last_skipped, "documents": len(idx)}

        return JSONResponse(await worker.run(add, use_index=True))

    @app.delete("/v1/index/documents/{doc_id:path}", tags=["index"], summary="Remove a document (bearer token)")
    async def api_index_remove(doc_id: str,
                               credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> JSONResponse:
        _check_token(credentials, token)
        need_index()
        removed = await worker.run(lambda idx: idx.remove(doc_id), use_index=True)
        if not removed:
            raise Problem(404, "No such document", f"the index holds no document {doc_id!r}")
        return JSONResponse({"removed": removed})

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> dict:
        return {"ok": True}

    @app.get("/readyz", tags=["ops"], summary="Models loaded (and the index readable)")
    async def readyz() -> JSONResponse:
        body = {"ready": True, "models": "loaded", "pending": worker.pending, "served": worker.served,
                "index": None}
        if index_path is not None:
            try:
                body["index"] = {"documents": await worker.run(len, use_index=True)}
            except Problem:
                raise
            except Exception as err:
                raise Problem(503, "Not ready", f"the index cannot be read: {err}") from None
        return JSONResponse(body)

    # -- the page
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.post("/ui/report", tags=["page"], summary="The page's report: an HTML fragment (check, and trace "
              "with an index)", openapi_extra=_openapi_body(TextRequest), response_class=HTMLResponse)
    async def ui_report(request: Request, source: str = "text") -> HTMLResponse:
        req = await parse_request(request, TextRequest, limits.max_body_bytes)
        result = await worker.run(lambda: check_text(req))
        sources_html = ""
        if index_path is not None:
            def traced(idx):
                # The sources' texts too: the alignment then keeps punctuation and paragraphs, links
                # each replaced block to its partner, and shows the copy restored from each source.
                found = idx.trace(result.text)
                return found, {m.doc_id: source_text(idx, m.doc_id) for m in found}

            matches, texts = await worker.run(traced, use_index=True)
            page = render_alignment_html(
                matches, title="alignment", query_text=result.text, source_texts=texts,
                restorations=restorations_from_sources(result.text, matches, texts))
            sources_html = render_sources(matches, page)
        return HTMLResponse(render_report(result, source[:200], thresholds=engine.thresholds,
                                          min_confidence=req.min_confidence, sources_html=sources_html))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    swagger = _swagger_dir()
    if swagger is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if swagger is not None:
            return get_swagger_ui_html(openapi_url="openapi.json", title="unspin API",
                                       swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                       swagger_css_url="docs-assets/swagger-ui.css",
                                       swagger_favicon_url="docs-assets/favicon-32x32.png")
        rows = "".join(f"<li><code>{', '.join(sorted(r.methods or []))} {r.path}</code></li>"
                       for r in app.routes if getattr(r, "include_in_schema", False))
        return HTMLResponse(f"<!doctype html><title>unspin API</title><h1>unspin API</h1><p>The OpenAPI "
                            f"document: <a href='openapi.json'>openapi.json</a>.</p><ul>{rows}</ul>")

    return app


# ---- worker processes ---------------------------------------------------------------------
@dataclass
class ServeOptions:
    """What `unspin serve` hands each worker process (as JSON in `OPTIONS_ENV`).

    >>> ServeOptions(index="refs.sqlite").to_json()[:22]
    '{"index": "refs.sqlite'
    """

    index: str | None = None
    lm: str | None = None
    channel: str | None = None
    time_budget_s: float | None = 30.0
    max_body_bytes: int = MAX_DOCUMENT_BYTES
    max_pending: int = DEFAULT_MAX_PENDING
    queue_timeout_s: float = DEFAULT_QUEUE_TIMEOUT_S

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def build(self, token: str | None) -> FastAPI:
        """Load the models (once, here) and make the app."""
        from .lexicon import Channel

        channel = Channel.load(self.channel) if self.channel else None
        engine = Engine.load(lm_path=self.lm, channel=channel, time_budget_s=self.time_budget_s or None)
        return create_app(engine, self.index, token,
                          ServeLimits(self.max_body_bytes, self.max_pending, self.queue_timeout_s))


def app_from_environment() -> FastAPI:
    """The app factory uvicorn calls in each worker process: options from `OPTIONS_ENV`, the token
    from `TOKEN_ENV`; the models load here, once per worker."""
    options = ServeOptions(**json.loads(os.environ.get(OPTIONS_ENV, "{}")))
    return options.build(os.environ.get(TOKEN_ENV) or None)
