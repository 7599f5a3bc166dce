"""The Litestar app: the universal Email Bison webhook, its drop-in aliases, health, readiness and metrics.

Thin by design: authentication, decoding and the single store call live in `bisonsync.ingest`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import RawBody
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.types.internal_types import PathParameterDefinition

import bisonsync
from bisonsync import migrations
from bisonsync.ingest import Verdict, WebhookIngestor, legacy_interested_body
from bisonsync.settings import Settings
from bisonsync.store import Store, StoreError, store_from_settings
from service.background import background_lifespans
from service.dashboard import dashboard_handlers
from service.metrics import ServiceMetrics
from service.webhook_docs import (
    LEGACY_BODY,
    UNIVERSAL_BODY,
    LegacyInterestedAccepted,
    WebhookAccepted,
    success_response,
    webhook_operation,
)

log = logging.getLogger("bisonsync.service")

TOKEN_HEADER = "x-bisonsync-token"
# The predecessor's CORS headers (Supabase Edge Functions), plus our token header.
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["GET", "POST", "OPTIONS"],
    allow_headers=["authorization", "x-client-info", "apikey", "content-type", TOKEN_HEADER],
)


@dataclass
class ServiceState:
    settings: Settings
    store: Store
    ingestor: WebhookIngestor
    metrics: ServiceMetrics


def _state(request: Request[Any, Any, State]) -> ServiceState:
    svc: ServiceState = request.app.state.service
    return svc


def _token(request: Request[Any, Any, State]) -> str | None:
    return request.query_params.get("token") or request.headers.get(TOKEN_HEADER)


def _instance(request: Request[Any, Any, State]) -> str | None:
    """The instance the webhook URL names (`?instance=`), for deployments serving several; None: the configured."""
    return request.query_params.get("instance")


def _respond(svc: ServiceState, verdict: Verdict, started: float, body: dict[str, Any] | None = None) -> Response[Any]:
    svc.metrics.observe(verdict.event_type, verdict.outcome, time.perf_counter() - started)
    return Response(
        content=body if body is not None else verdict.body, status_code=verdict.http_status, headers=verdict.headers
    )


def _webhook_operation_id(handler: Any, method: Any, path_components: list[str | PathParameterDefinition]) -> str:
    """One handler, two paths: the canonical one and the predecessor's drop-in alias."""
    return "ingestBisonWebhookAlias" if "functions" in path_components else "ingestBisonWebhook"


class ErrorBody(msgspec.Struct):
    error: str


WEBHOOK_RESPONSES: dict[int, ResponseSpec] = {
    400: ResponseSpec(ErrorBody, description="Malformed JSON or not an Email Bison event; the error says what"),
    401: ResponseSpec(
        ErrorBody, description="Missing or wrong webhook token, checked before the body is read; nothing is stored"
    ),
    404: ResponseSpec(ErrorBody, description="`?instance=` names an instance this deployment does not serve"),
    413: ResponseSpec(None, description="Body over BISONSYNC_WEBHOOK_MAX_BYTES"),
    422: ResponseSpec(
        ErrorBody,
        description="The database refused a value (e.g. too long to index): stored as failed with its payload for "
        "`bisonsync replay`; a retry of the same body cannot succeed",
    ),
    503: ResponseSpec(ErrorBody, description="Database unavailable: nothing was applied, retry later"),
}


def build_handlers(max_body: int) -> list[Any]:
    @post(
        ["/webhooks/bison", "/functions/v1/universal-bison-webhook"],
        operation_id=_webhook_operation_id,
        operation_class=webhook_operation(UNIVERSAL_BODY, TOKEN_HEADER),
        request_max_body_size=max_body,
        summary="Universal Email Bison webhook",
        tags=["webhooks"],
        status_code=200,
        responses={200: success_response(WebhookAccepted), **WEBHOOK_RESPONSES},
    )
    async def universal_webhook(request: Request[Any, Any, State], body: RawBody) -> Response[Any]:
        """Ingest one Email Bison delivery exactly once. 200 applied/duplicate/ignored, 400 malformed,
        401 bad token (before any parsing), 404 unknown `?instance=`, 413 too large, 422 value refused by the
        database (kept as failed), 503 database unavailable (retry)."""
        svc = _state(request)
        started = time.perf_counter()
        verdict = await svc.ingestor.handle(body, _token(request), instance=_instance(request))
        return _respond(svc, verdict, started)

    @post(
        "/functions/v1/bison-interested-webhook",
        operation_id="ingestLegacyInterestedWebhook",
        operation_class=webhook_operation(LEGACY_BODY, TOKEN_HEADER),
        request_max_body_size=max_body,
        summary="Predecessor's lead_interested endpoint (same ledger, so it never double counts)",
        tags=["webhooks"],
        status_code=200,
        responses={200: success_response(LegacyInterestedAccepted), **WEBHOOK_RESPONSES},
    )
    async def legacy_interested(request: Request[Any, Any, State], body: RawBody) -> Response[Any]:
        """Accepts only lead_interested; answers in the predecessor's shape."""
        svc = _state(request)
        started = time.perf_counter()
        verdict = await svc.ingestor.handle(
            body, _token(request), instance=_instance(request), require_type="lead_interested"
        )
        if verdict.http_status != 200:
            return _respond(svc, verdict, started)
        return _respond(svc, verdict, started, legacy_interested_body(verdict))

    return [universal_webhook, legacy_interested]


@get("/healthz", operation_id="healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get(
    "/readyz",
    operation_id="readyz",
    tags=["ops"],
    responses={
        503: ResponseSpec(
            dict[str, str], description="Database unreachable or schema not migrated", generate_examples=False
        )
    },
)
async def readyz(request: Request[Any, Any, State]) -> Response[dict[str, str]]:
    """Readiness: the database answers and has every migration this package bundles."""
    try:
        await _state(request).store.ping()
        pending = await migrations.pending_in(_state(request).store)
    except StoreError as exc:
        return Response({"status": "unavailable", "error": str(exc)}, status_code=503)
    if pending:  # the code expects a newer schema: `bisonsync db migrate`
        return Response({"status": "schema behind", "pending": " ".join(pending)}, status_code=503)
    return Response({"status": "ready"}, status_code=200)


@get("/metrics", operation_id="metrics", tags=["ops"], media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, State]) -> bytes:
    """Prometheus text format."""
    return _state(request).metrics.render()


def _access_log(app: ASGIApp) -> ASGIApp:
    """Access log without the query string, so `?token=` never reaches a log."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            ms = (time.perf_counter() - started) * 1000
            # successes are in the ledger and /metrics already: DEBUG keeps the hot path cheap (~5 % CPU)
            level = logging.DEBUG if status < 400 else logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "%s %s %s %.1fms", scope.get("method"), scope["path"], status, ms)

    return middleware


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    extra_lifespans: list[Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]] | None = None,
) -> Litestar:
    """App factory. The app opens and closes the store within its lifespan (on the loop that serves requests);
    `store` may be injected (tests pick the implementation), otherwise it is chosen from the settings.
    `extra_lifespans` replaces the default background work (poll, alerts, snapshots; off with BISONSYNC_JOBS=0)."""
    settings = settings or Settings.from_env()
    the_store = store or store_from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        with contextlib.suppress(StoreError):  # readiness reports it; webhooks answer 503 until it's back
            await the_store.open()
        app.state.service = ServiceState(
            settings=settings,
            store=the_store,
            ingestor=WebhookIngestor(
                the_store,
                global_token=settings.webhook_token,
                instance=settings.webhook_instance(),
                instances=settings.webhook_instances,
                legacy_instance=settings.default_instance,
            ),
            metrics=ServiceMetrics(),
        )
        try:
            yield
        finally:
            await the_store.close()

    if extra_lifespans is None:
        extra_lifespans = background_lifespans(settings, the_store) if settings.jobs_enabled else []
    return Litestar(
        route_handlers=[
            *build_handlers(settings.webhook_max_bytes),
            healthz,
            readyz,
            metrics,
            *dashboard_handlers(settings),
        ],
        lifespan=[lifespan, *extra_lifespans],
        cors_config=CORS,
        middleware=[_access_log],
        openapi_config=OpenAPIConfig(title="bisonsync", version=bisonsync.__version__, path="/schema"),
        logging_config=None,  # the process configures logging (bisonsync.logs), with secret redaction
        request_max_body_size=settings.webhook_max_bytes,
    )
