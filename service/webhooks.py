"""The webhook routes: thin. `bisonsync.ingest` authenticates, decodes and stores; `service.errors` says what the
sender is answered; this module reads the request and counts the delivery."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import RawBody
from litestar.types.internal_types import PathParameterDefinition

from bisonsync.ingest import Verdict
from service.errors import ANSWERS, WEBHOOK_RESPONSES, legacy_interested_body, verdict_body
from service.metrics import ServiceMetrics
from service.state import ServiceState
from service.webhook_docs import (
    LEGACY_BODY,
    UNIVERSAL_BODY,
    LegacyInterestedAccepted,
    WebhookAccepted,
    success_response,
    webhook_operation,
)

TOKEN_HEADER = "x-bisonsync-token"


def _token(request: Request[Any, Any, State]) -> str | None:
    return request.query_params.get("token") or request.headers.get(TOKEN_HEADER)


def _instance(request: Request[Any, Any, State]) -> str | None:
    """The instance the webhook URL names (`?instance=`), for deployments serving several; None: the configured."""
    return request.query_params.get("instance")


def _answer(verdict: Verdict, body: dict[str, Any], metrics: ServiceMetrics, started: float) -> Response[Any]:
    answer = ANSWERS[verdict.outcome]
    metrics.observe(verdict.event_type, answer.metric, time.perf_counter() - started)
    return Response(content=body, status_code=answer.status, headers=answer.headers)


def _webhook_operation_id(handler: Any, method: Any, path_components: list[str | PathParameterDefinition]) -> str:
    """One handler, two paths: the canonical one and the predecessor's drop-in alias."""
    return "ingestBisonWebhookAlias" if "functions" in path_components else "ingestBisonWebhook"


class WebhookController(Controller):
    """Email Bison deliveries (bodies up to BISONSYNC_WEBHOOK_MAX_BYTES, set on their router).

    The handlers take the one `service` dependency (ingestor and metrics) rather than two: Litestar resolves two or
    more dependencies of a handler concurrently in a task group, which cost ~80 us of CPU per delivery."""

    tags = ["webhooks"]

    @post(
        ["/webhooks/bison", "/functions/v1/universal-bison-webhook"],
        operation_id=_webhook_operation_id,
        operation_class=webhook_operation(UNIVERSAL_BODY, TOKEN_HEADER),
        summary="Universal Email Bison webhook",
        status_code=200,
        responses={200: success_response(WebhookAccepted), **WEBHOOK_RESPONSES},
    )
    async def universal_webhook(
        self, request: Request[Any, Any, State], body: RawBody, service: NamedDependency[ServiceState]
    ) -> Response[Any]:
        """Ingest one Email Bison delivery exactly once. 200 applied/duplicate/ignored, 400 malformed,
        401 bad token (before any parsing), 404 unknown `?instance=`, 413 too large, 422 value refused by the
        database (kept as failed), 503 database unavailable (retry)."""
        started = time.perf_counter()
        verdict = await service.ingestor.handle(body, _token(request), instance=_instance(request))
        return _answer(verdict, verdict_body(verdict), service.metrics, started)

    @post(
        "/functions/v1/bison-interested-webhook",
        operation_id="ingestLegacyInterestedWebhook",
        operation_class=webhook_operation(LEGACY_BODY, TOKEN_HEADER),
        summary="Predecessor's lead_interested endpoint (same ledger, so it never double counts)",
        status_code=200,
        responses={200: success_response(LegacyInterestedAccepted), **WEBHOOK_RESPONSES},
    )
    async def legacy_interested(
        self, request: Request[Any, Any, State], body: RawBody, service: NamedDependency[ServiceState]
    ) -> Response[Any]:
        """Accepts only lead_interested; answers in the predecessor's shape."""
        started = time.perf_counter()
        verdict = await service.ingestor.handle(
            body, _token(request), instance=_instance(request), require_type="lead_interested"
        )
        body_out = legacy_interested_body(verdict) if verdict.accepted else verdict_body(verdict)
        return _answer(verdict, body_out, service.metrics, started)
