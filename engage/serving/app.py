"""The engage HTTP service: score drafts, compare drafts, and the draft-studio page.

    create_app(ServeOptions(model="models:/engage@champion"))  ->  FastAPI app (run by `serve.py`)

Start-up (the lifespan) loads the model in a background thread (`ModelSlot`, serving/slot.py), checks its
embedders and warms it with one prediction; until then `/health` answers 200 and `/ready` 503, and a model
that cannot be loaded stops the server (`on_startup_failure`). Requests take the model reference once, so a
reload (`POST /admin/reload` or SIGHUP) swaps it atomically while requests in flight finish on the old one.
Scoring runs in worker threads behind `Admission`; `RequestGuard` refuses bodies over the cap before parsing,
and stalled ones. Every error is `{"error": {"field", "message"}}` (or a list of them) and never repeats the
submitted data.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from engage.data.schema import OUTCOME_COUNTS
from engage.model.targets import COUNT_TARGETS, TARGETS
from engage.outcomes.store import OutcomeError, OutcomeRecord, post_id_of
from engage.scoring.contract import ScoringModel
from engage.serving.access import OPEN, Access, HostGuard, KeyRing, allowed_hosts, ready_access
from engage.serving.limits import Admission, BodyTimeout, BodyTooLarge, RequestGuard
from engage.serving.options import ADMIN_TOKEN_ENV, API_KEY_ENV, ServeOptions
from engage.serving.parsing import (
    MAX_FORM_FIELDS,
    RequestError,
    body_type,
    compare_request_from_json,
    parse_json_object,
    score_request_from_form,
    score_request_from_json,
    urlencoded_fields,
    validate_body,
)
from engage.serving.schemas import (
    COMPARE_BODY,
    ERROR_RESPONSES,
    MAX_AGE_HOURS,
    SCORE_BODY,
    Accounts,
    Accuracy,
    CompareRequest,
    CompareResponse,
    ErrorResponse,
    FeedPhotos,
    Health,
    OutcomeRecorded,
    OutcomeRequest,
    Ready,
    Reloaded,
    ScoreRequest,
    ScoreResponse,
    Targets,
)
from engage.serving.scoring import compare_and_record, load_model, open_store, require_store, score_and_record
from engage.serving.slot import ModelSlot, model_name

log = logging.getLogger("engage.serving")

STATIC_DIR = Path(__file__).resolve().parent / "static"


# Module level: FastAPI resolves the (string) annotations of dependencies in this module's namespace.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description=f"required on /v1/* when the server sets {API_KEY_ENV}")
ADMIN_BEARER = HTTPBearer(auto_error=False, description=f"the token in {ADMIN_TOKEN_ENV}")


def require_api_key(request: Request, key: Annotated[str | None, Depends(API_KEY_HEADER)]) -> None:
    """401 unless the X-API-Key header holds one of the server's keys (when it has any); the key's `Access`
    (every account, or its own) is kept on the request for the routes to check (`require_account`)."""
    keys = request.app.state.keys
    if keys is None:
        request.state.access = OPEN
        return
    if key is None:
        raise RequestError(401, [("X-API-Key", "is missing; send the API key in the X-API-Key header")])
    access = keys.lookup(key)
    if access is None:
        raise RequestError(401, [("X-API-Key", "is not a valid API key")])
    request.state.access = access


def request_access(request: Request) -> Access:
    """What the caller of this request may do (set by `require_api_key`; OPEN on a server without keys)."""
    return getattr(request.state, "access", OPEN if request.app.state.keys is None else Access(admin=False))


def require_account(request: Request, account: str) -> None:
    """403 unless the request's key may score, see and compare `account` (never says whether it exists)."""
    if not request_access(request).allows(account):
        raise RequestError(403,
                           [("account", "is not an account this API key may score, see or compare; ask the "
                                             "operator for a key scoped to it")])


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"


def _error_json(status: int, problems: list[tuple[str | None, str]],
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(RequestError(status, problems).body(), status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # 400 here is starlette's multipart parser, whose messages are fixed texts (no submitted data)
        field = "body" if isinstance(error, BodyTooLarge | BodyTimeout) or error.status_code == 400 else None
        return _error_json(error.status_code, [(field, str(error.detail))], dict(error.headers or {}) or None)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect) -> Response:
        # Ordinary client behaviour, not a fault: one line, no traceback; nobody is left to read an answer.
        log.info("client %s disconnected before sending the whole body of %s %s",
                 _client(request), request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        from engage.serving.parsing import field_name  # FastAPI-parsed parameters (headers); no input echoed

        problems: list[tuple[str | None, str]] = [
            (field_name([p for p in e["loc"] if p not in ("body", "header", "query")]), e["msg"])
                    for e in error.errors()]
        return _error_json(422, problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_json(500, [(None, "internal error while scoring; the server log has the details")])


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema plus the request bodies that the routes read themselves (JSON or multipart)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ScoreRequest, CompareRequest, OutcomeRequest):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in body.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components[model.__name__] = body
        app.openapi_schema = schema
        return schema

    return build


def create_app(
    options: ServeOptions | None = None,
    *,
    loader: Callable[[], ScoringModel] | None = None,
    on_startup_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    """The service for `options`. `loader` returns a ready model (default: load, check embedders, warm)."""
    options = options or ServeOptions()
    admission = Admission(options.max_concurrent, options.max_queue, options.retry_after_s)
    # The batcher waits only while other drafts are being scored: a lone request never waits.
    slot = ModelSlot(loader or partial(load_model, options.model, options.tracking_uri, options,
                                       expected_callers=lambda: admission.running), options.model)
    on_failure = on_startup_failure or (lambda message: None)
    store = open_store(options)
    sighup_tasks: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=slot.load_initial, args=(on_failure,), name="engage-model-load",
                         daemon=True).start()
        loop = asyncio.get_running_loop()

        def on_sighup() -> None:
            task = loop.create_task(slot.reload_logged())
            sighup_tasks.add(task)
            task.add_done_callback(sighup_tasks.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            hup = True
        # not the main thread / not Unix
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):
            hup = False
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)

    app = FastAPI(
        title="engage",
        version="1",
        description="Predicts how a draft Instagram post will "
        "do before it is posted: likes, comments and the "
        "insight counts the model was trained on (impressions, "
        "reach, saves, shares, profile visits, follows, link clicks) "
        "with a range, the risk that the audience finds it fake, tips and the factors behind the prediction. "
        "The draft studio is at [/](/).",
        lifespan=lifespan,
    )
    app.state.slot = slot
    app.state.admission = admission
    app.state.options = options
    # None: no key, an open (loopback) server
    app.state.keys = KeyRing.load(options.api_key, options.key_file)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(RequestGuard, max_bytes=options.max_body_bytes, read_timeout_s=options.read_timeout_s,
                       body_timeout_s=options.body_timeout_s)
    hosts = allowed_hosts(options.host, options.allowed_hosts)
    if hosts is not None:  # outermost: a DNS-rebinding page is refused before anything else runs
        app.add_middleware(HostGuard, allowed=hosts)
    _install_error_handlers(app)

    v1 = [Depends(require_api_key)]

    @app.get("/health", response_model=Health, tags=["status"],
             summary="Alive (answers while the model loads)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready, tags=["status"], summary="Model loaded and warmed",
             responses={503: {"model": Ready, "description": "still loading, or the model failed to load"}})
    async def ready(request: Request) -> Any:
        model = slot.model
        if model is None:
            return JSONResponse({"status": slot.state, "error": slot.error}, status_code=503,
                                headers={"Retry-After": "5"})
        answer = {"status": "ready", "model": model_name(model), "version": model.version,
                  "embedder": model.embedder}
        access = ready_access(request)
        if access is not None and access.admin:
            # The shared vector cache's hits tell whether someone scored a given photo or caption lately: only
            # an admin key (or the operator on a keyless loopback server) sees them.
            answer.update(model.serving_settings())
        return answer

    @app.get("/v1/accounts", response_model=Accounts, dependencies=v1, tags=["drafts"],
             responses=ERROR_RESPONSES,
             summary="Accounts the model knows")
    async def accounts(request: Request) -> dict[str, list[str]]:
        model = slot.current()
        known = sorted(str(a) for a in model.context_posts["account"].unique())
        return {"accounts": request_access(request).visible(known)}  # a scoped key sees only its accounts

    @app.get("/v1/feed", response_model=FeedPhotos, dependencies=v1, tags=["drafts"],
             responses=ERROR_RESPONSES,
             summary="The account's last eight photos known to the model, for the feed preview")
    async def feed(request: Request,
                   account: Annotated[str, Query(min_length=1, max_length=100,
                                                 description="the account")]) -> dict[str, Any]:
        require_account(request, account)
        model = slot.current()
        return {"account": account, "photos": list(getattr(model, "feed_photos", {}).get(account, []))}

    @app.get("/v1/targets", response_model=Targets, dependencies=v1, tags=["drafts"],
             responses=ERROR_RESPONSES,
             summary="The counts the model predicts (what /v1/compare can rank by)")
    async def targets() -> dict[str, Any]:
        model = slot.current()
        names = [name for name in COUNT_TARGETS if name in model.models]
        return {"targets": [{"name": n, "label": TARGETS[n].label, "goal": TARGETS[n].goal,
                             "description": TARGETS[n].description}
                            for n in names],
                            "default_goal": "likes" if "likes" in names else (names[0] if names else "likes")}

    @app.post("/v1/score", response_model=ScoreResponse, dependencies=v1, tags=["drafts"],
              responses=ERROR_RESPONSES,
              openapi_extra=SCORE_BODY,
              summary="Score one draft (JSON with a base64 image, or multipart with a file)")
    async def score(request: Request) -> Any:
        model = slot.current()  # taken once: a reload does not change the model under this request
        kind = body_type(request, forms=True)
        if kind == "urlencoded":
            fields = await run_in_threadpool(urlencoded_fields, await request.body())
            draft = await run_in_threadpool(score_request_from_form, fields, lambda upload: b"")
        elif kind == "multipart":
            form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS,
                                      max_part_size=options.max_body_bytes)
            try:
                fields = {name: form.getlist(name) for name in form.keys()}
                draft = await run_in_threadpool(score_request_from_form,
                                                fields, lambda upload: upload.file.read())
            finally:
                await form.close()
        else:
            draft = await run_in_threadpool(score_request_from_json, await request.body())
        require_account(request, draft.account)
        return await admission.run(score_and_record, model, draft, store)

    @app.post("/v1/compare", response_model=CompareResponse, dependencies=v1, tags=["drafts"],
              responses={**ERROR_RESPONSES,
                         409: {"model": ErrorResponse, "description": "a goal this model does not "
                             "predict (its training data had none); the message lists those it has"}},
              openapi_extra=COMPARE_BODY,
              summary="Rank 2 to 10 drafts of one account by an expected count (goal; default likes)")
    async def compare(request: Request) -> Any:
        model = slot.current()
        body_type(request, forms=False)
        compare_request, drafts = await run_in_threadpool(compare_request_from_json, await request.body())
        require_account(request, compare_request.account)
        return await admission.run(compare_and_record, model, compare_request, drafts, store,
                                   options.time_zone_of(compare_request.account))

    @app.post("/v1/outcomes", response_model=OutcomeRecorded, status_code=201, dependencies=v1,
              tags=["outcomes"],
              responses={**ERROR_RESPONSES,
                         404: {"model": ErrorResponse, "description": "the server records no outcomes"},
                         409: {"model": ErrorResponse,
                               "description": "the post is linked to another score, the score "
                               "to another post, or this age is recorded already"}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/OutcomeRequest"}}}}},
        summary="Record what a published draft did: its post and its counts at an age (24 h, 7 days...)")
    async def record_outcome(request: Request) -> Any:
        outcomes = require_store(store)
        body_type(request, forms=False)
        body = await run_in_threadpool(validate_body, OutcomeRequest, parse_json_object(await request.body()))
        record = OutcomeRecord(posted_at=body.posted_at, age_hours=body.age_hours, score_id=body.score_id,
                               post_id=body.post_id, permalink=body.permalink,
                               counts={name: getattr(body, name) for name in OUTCOME_COUNTS})
        account = await run_in_threadpool(outcomes.account_of, body.score_id,
                                          post_id_of(body.post_id, body.permalink))
        if account is not None:  # an unknown score is refused by the store, naming score_id
            require_account(request, account)
        try:
            return await run_in_threadpool(outcomes.record_outcome, record)
        except OutcomeError as e:
            raise RequestError(e.status, [(e.field, e.message)]) from None

    @app.get("/v1/accuracy", response_model=Accuracy, dependencies=v1, tags=["outcomes"],
             responses={**ERROR_RESPONSES,
                        404: {"model": ErrorResponse, "description": "the server records no outcomes"}},
             summary="How right engage was for the account's published drafts, next to its trailing average")
    async def accuracy(request: Request,
                       account: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
                       age_hours: Annotated[float | None, Query(gt=0, le=MAX_AGE_HOURS)] = None) -> Any:
        from engage.outcomes.accuracy import accuracy as figures

        _may_see(request, account)
        return await run_in_threadpool(figures, require_store(store), account, age_hours)

    @app.get("/v1/accuracy/plot", dependencies=v1, tags=["outcomes"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "predicted against actual (PNG)"},
                        **ERROR_RESPONSES,
                        404: {"model": ErrorResponse, "description": "the server records no outcomes"}},
             summary="Predicted against actual for the account's published drafts, as a PNG")
    async def accuracy_plot(request: Request,
                            account: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
            age_hours: Annotated[float | None, Query(gt=0, le=MAX_AGE_HOURS)] = None) -> Response:
        from engage.outcomes.accuracy import accuracy_png

        _may_see(request, account)
        png = await run_in_threadpool(accuracy_png, require_store(store), account, age_hours)
        return Response(png, media_type="image/png")

    @app.post("/admin/reload", response_model=Reloaded, tags=["admin"],
              include_in_schema=options.admin_token is not None,
              summary="Load the model again (e.g. a new champion), warm it and swap it in",
              responses={403: {"model": ErrorResponse}, 409: {"model": ErrorResponse},
                         500: {"model": ErrorResponse}})
    async def reload(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(ADMIN_BEARER)]) -> dict[str, Any]:
        if options.admin_token is None:
            raise StarletteHTTPException(404, "Not Found")
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(),
                                                          options.admin_token.encode()):
            raise RequestError(403, [("Authorization", f"is missing or not the admin token; send "
                                                       f"'Authorization: Bearer <{ADMIN_TOKEN_ENV}>'")])
        old, new = await slot.reload()
        return {"status": "reloaded", "previous_version": getattr(old, "version", None),
                "version": new.version,
                "embedder": new.embedder}

    @app.get("/", include_in_schema=False)
    async def studio() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _may_see(request: Request, account: str | None) -> None:
    """403 unless the request's key may see `account`; all accounts at once (no account) need an admin key."""
    if account is not None:
        require_account(request, account)
    elif not request_access(request).admin:
        raise RequestError(403,
                           [("account", "is required with an API key scoped to accounts: name one of yours")])
