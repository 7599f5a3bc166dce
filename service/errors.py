"""The one place where library outcomes and errors become HTTP: the webhook's outcome table and the app's exception
handlers.

The library (`bisonsync.ingest`) says what became of a delivery (`Verdict.outcome`) and why; this module says what
the sender is answered. A library error that escapes a handler gets the same answer as the matching outcome (a
store that is down is a 503 with `Retry-After` wherever it surfaces).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from bisonsync.events import InvalidDelivery
from bisonsync.ingest import INTERNAL, UNAVAILABLE, Outcome, UnknownInstance, Verdict
from bisonsync.store import StoreError, StoreInvalidInput, StoreUnavailable

log = logging.getLogger("bisonsync.service")

RETRY_AFTER_S = "30"


@dataclass(frozen=True, slots=True)
class Answer:
    """How an outcome goes on the wire: the status code, the metrics outcome label, extra headers."""

    status: int
    #: the `outcome` label of `bisonsync_webhook_deliveries` (service/metrics.py OUTCOMES)
    metric: str
    headers: dict[str, str] = field(default_factory=dict)


#: every outcome of `bisonsync.ingest.Outcome`, answered
ANSWERS: dict[Outcome, Answer] = {
    "applied": Answer(200, "applied"),
    "duplicate": Answer(200, "duplicate"),
    "ignored": Answer(200, "ignored"),
    "rejected": Answer(401, "rejected"),
    "unknown_instance": Answer(404, "invalid"),
    "malformed": Answer(400, "invalid"),
    "wrong_type": Answer(400, "invalid"),
    "refused": Answer(422, "invalid"),
    "unavailable": Answer(503, "unavailable", {"Retry-After": RETRY_AFTER_S}),
    "failed": Answer(500, "failed"),
}


def verdict_body(verdict: Verdict) -> dict[str, Any]:
    """The universal webhook's JSON answer for a verdict."""
    if verdict.accepted:
        body: dict[str, Any] = {
            "status": verdict.outcome,
            "event_type": verdict.delivery_type,
            "delivery_id": verdict.delivery_id,
            "processing_time_ms": verdict.processing_time_ms,
        }
        if verdict.duplicate_of is not None:
            body["duplicate_of"] = verdict.duplicate_of
        if verdict.lead_id is not None:
            body["lead_id"] = verdict.lead_id
            body["lead_action"] = verdict.lead_action
        return body
    if verdict.outcome == "refused":  # kept as failed: the sender learns which ledger row holds it
        return {
            "error": verdict.error,
            "status": "failed",
            "event_type": verdict.delivery_type,
            "delivery_id": verdict.delivery_id,
        }
    if verdict.outcome == "wrong_type":
        return {"error": verdict.error, "received": verdict.event_type}
    return {"error": verdict.error}


def legacy_interested_body(verdict: Verdict) -> dict[str, Any]:
    """The predecessor's `bison-interested-webhook` success shape (its errors are the universal webhook's)."""
    return {
        "success": True,
        "action": verdict.lead_action or ("updated" if verdict.outcome == "duplicate" else "created"),
        "lead_id": verdict.lead_id,
        "workspace": verdict.workspace_name or "Unknown",
        "status": verdict.outcome,
        "processing_time_ms": verdict.processing_time_ms,
    }


class ErrorBody(msgspec.Struct):
    error: str


#: what the webhook routes document beyond 200 (each one an outcome of ANSWERS)
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


# --- exception handlers: a library error that reaches Litestar ------------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response[dict[str, str]]:
    return Response({"error": message}, status_code=status, headers=headers)


def store_unavailable(request: Request[Any, Any, Any], exc: StoreUnavailable) -> Response[dict[str, str]]:
    log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
    answer = ANSWERS["unavailable"]
    return _error(answer.status, UNAVAILABLE, answer.headers)


def store_invalid_input(request: Request[Any, Any, Any], exc: StoreInvalidInput) -> Response[dict[str, str]]:
    return _error(ANSWERS["refused"].status, f"invalid input (SQLSTATE {exc.code}): {str(exc)[:300]}")


def store_error(request: Request[Any, Any, Any], exc: StoreError) -> Response[dict[str, str]]:
    log.error("%s %s: store error: %s", request.method, request.url.path, exc)
    return _error(ANSWERS["failed"].status, INTERNAL)


def invalid_delivery(request: Request[Any, Any, Any], exc: InvalidDelivery) -> Response[dict[str, str]]:
    return _error(ANSWERS["malformed"].status, str(exc))


def unknown_instance(request: Request[Any, Any, Any], exc: UnknownInstance) -> Response[dict[str, str]]:
    return _error(ANSWERS["unknown_instance"].status, "unknown instance: not one this deployment serves")


#: the most specific class wins (Litestar walks the exception's MRO), so StoreUnavailable is not a plain StoreError
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    StoreUnavailable: store_unavailable,
    StoreInvalidInput: store_invalid_input,
    StoreError: store_error,
    InvalidDelivery: invalid_delivery,
    UnknownInstance: unknown_instance,
}
