"""Webhook ingestion policy, independent of HTTP: authenticate, decode, one store call, an honest verdict.

The service maps `Verdict.http_status` and `Verdict.body` onto the wire; a CLI or a test can call
`WebhookIngestor.handle` directly with the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bisonsync.events import InvalidDelivery, decode_delivery
from bisonsync.store import IngestRequest, Store, StoreError, StoreInvalidInput, StoreUnavailable
from bisonsync.store import api as store_api

log = logging.getLogger("bisonsync.ingest")


def hash_token(token: str) -> str:
    """How per-workspace webhook tokens are stored: hex sha256 (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    http_status: int
    body: dict[str, Any]
    event_type: str = "unknown"
    #: applied | duplicate | ignored | rejected | invalid | unavailable | failed
    outcome: str = "failed"
    headers: dict[str, str] = field(default_factory=dict)
    workspace_name: str | None = None


class WebhookIngestor:
    def __init__(self, store: Store, *, global_token: str | None, default_instance: str = "default") -> None:
        self.store = store
        self.global_token = global_token
        self.default_instance = default_instance

    def _token_hash(self, token: str) -> str | None:
        """None when the global token matched (trusted for every workspace); else the hash to check in SQL."""
        if self.global_token and hmac.compare_digest(token.encode(), self.global_token.encode()):
            return None
        return hash_token(token)

    async def _reject(self, reason: str, event_type: str = "unknown") -> Verdict:
        try:
            await store_api.record_rejected(self.store, event_type, reason)
        except StoreError as exc:  # the 401 stands whether or not the ledger could note it
            log.warning("could not record rejected delivery: %s", exc)
        return Verdict(401, {"error": reason}, event_type, "rejected")

    async def _record_failed(self, request: IngestRequest, error: str) -> None:
        """Keep the payload under its dedup key so the sender's retry (or `bisonsync replay`) applies it later."""
        try:
            await store_api.record_failed(self.store, request, error)
        except StoreError as exc:
            log.warning("could not record failed delivery: %s", exc)

    async def handle(self, body: bytes, token: str | None, *, require_type: str | None = None) -> Verdict:
        started = time.perf_counter()
        if not token:
            return await self._reject("missing webhook token")
        token_hash = self._token_hash(token)
        try:
            delivery = decode_delivery(body, default_instance=self.default_instance)
        except InvalidDelivery as exc:
            return Verdict(400, {"error": str(exc)}, "unknown", "invalid")
        event_type = delivery.event_type
        if require_type is not None and event_type != require_type:
            return Verdict(400, {"error": f"Not a {require_type} event", "received": event_type}, event_type, "invalid")
        request = IngestRequest(
            dedup_key=delivery.dedup_key,
            instance=delivery.instance,
            bison_workspace_id=delivery.workspace_id,
            workspace_name=delivery.workspace_name,
            event_type=event_type,
            payload_json=delivery.payload_json,
            received_at=datetime.now(UTC),
            token_hash=token_hash,
        )
        try:
            outcome = await store_api.ingest(self.store, request)
        except StoreUnavailable as exc:
            log.warning("store unavailable for %s: %s", event_type, exc)
            return Verdict(
                503, {"error": "database unavailable, retry later"}, event_type, "unavailable", {"Retry-After": "30"}
            )
        except StoreInvalidInput as exc:
            return Verdict(400, {"error": str(exc)}, event_type, "invalid")
        except StoreError as exc:
            log.error("ingest failed for %s: %s", event_type, exc)
            await self._record_failed(request, str(exc))
            return Verdict(500, {"error": "internal error"}, event_type, "failed")
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        if outcome.status == "rejected":
            return Verdict(401, {"error": outcome.error or "invalid webhook token"}, event_type, "rejected")
        body_out: dict[str, Any] = {
            "status": outcome.status,
            "event_type": event_type,
            "delivery_id": outcome.delivery_id,
            "processing_time_ms": elapsed_ms,
        }
        if outcome.duplicate_of is not None:
            body_out["duplicate_of"] = outcome.duplicate_of
        if outcome.lead_id is not None:
            body_out["lead_id"] = outcome.lead_id
            body_out["lead_action"] = outcome.lead_action
        return Verdict(200, body_out, event_type, outcome.status, workspace_name=delivery.workspace_name)


def legacy_interested_body(verdict: Verdict) -> dict[str, Any]:
    """The predecessor's `bison-interested-webhook` success shape, from an ingest verdict."""
    return {
        "success": True,
        "action": verdict.body.get("lead_action") or ("updated" if verdict.outcome == "duplicate" else "created"),
        "lead_id": verdict.body.get("lead_id"),
        "workspace": verdict.workspace_name or "Unknown",
        "status": verdict.outcome,
        "processing_time_ms": verdict.body.get("processing_time_ms"),
    }
