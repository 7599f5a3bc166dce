"""The library's database API: thin, typed wrappers over the SQL functions, usable on their own.

Each call is one store round trip (one transaction). Arguments of type `bytes` are JSON documents; datetimes and
UUIDs are passed as Python objects (each store encodes them for its wire).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from bisonsync.store.base import IngestOutcome, IngestRequest, Store, outcome_from_json

#: metric names `increment_metric` accepts (canonical, then the predecessor's aliases)
METRICS = ("emails_sent", "replies", "interested", "bounced", "unsubscribed")


async def ingest(store: Store, req: IngestRequest) -> IngestOutcome:
    """Record one delivery in the ledger and, only if it is new, apply its effects (one transaction)."""
    args: dict[str, Any] = {
        "p_dedup_key": req.dedup_key,
        "p_instance": req.instance,
        "p_bison_workspace_id": req.bison_workspace_id,
        "p_workspace_name": req.workspace_name,
        "p_event_type": req.event_type,
        "p_payload": req.payload_json,
        "p_received_at": req.received_at,
    }
    if req.processing_ms is not None:
        args["p_processing_ms"] = req.processing_ms
    if req.token_hash is not None:
        args["p_token_hash"] = req.token_hash
    if req.legacy_keys:
        args["p_legacy_keys"] = list(req.legacy_keys)
    return outcome_from_json(await store.rpc("ingest_delivery", args))


async def increment_metric(
    store: Store, workspace_id: UUID | str, metric: str, by: int = 1, at: datetime | None = None
) -> int:
    """Atomically add `by` to a workspace's counter for the workspace-local day of `at` (default now)."""
    args: dict[str, Any] = {"p_workspace_id": str(workspace_id), "p_metric_name": metric, "p_increment_by": by}
    if at is not None:
        args["p_at"] = at
    return int(await store.rpc("increment_metric", args))


async def upsert_workspace(
    store: Store, instance: str, bison_workspace_id: int, name: str, timezone: str | None = None
) -> str:
    """Register (or rename) a workspace by its tenant key; returns its uuid."""
    args: dict[str, Any] = {"p_instance": instance, "p_bison_workspace_id": bison_workspace_id, "p_name": name}
    if timezone is not None:
        args["p_timezone"] = timezone
    return str(await store.rpc("upsert_workspace", args))


async def record_rejected(
    store: Store, event_type: str, error: str, workspace_id: str | None = None, received_at: datetime | None = None
) -> None:
    args: dict[str, Any] = {"p_event_type": event_type, "p_workspace_id": workspace_id, "p_error": error}
    if received_at is not None:
        args["p_received_at"] = received_at
    await store.rpc("record_rejected_delivery", args)


async def record_failed(store: Store, req: IngestRequest, error: str) -> dict[str, Any]:
    """Ledger a delivery whose ingest failed, payload kept: its next retry (same dedup key) applies it once.
    Returns `{"status": "failed", "delivery_id", "duplicate_of"?, "workspace_id"?}`."""
    result = await store.rpc(
        "record_failed_delivery",
        {
            "p_dedup_key": req.dedup_key,
            "p_instance": req.instance,
            "p_bison_workspace_id": req.bison_workspace_id,
            "p_workspace_name": req.workspace_name,
            "p_event_type": req.event_type,
            "p_payload": req.payload_json,
            "p_error": error[:2000],
            "p_received_at": req.received_at,
            "p_processing_ms": req.processing_ms,
        },
    )
    return result if isinstance(result, dict) else {}


async def replay_delivery(store: Store, delivery_id: int) -> dict[str, Any]:
    result: dict[str, Any] = await store.rpc("replay_delivery", {"p_delivery_id": delivery_id})
    return result


async def upsert_rows(store: Store, table: str, rows: Sequence[Mapping[str, Any]], on_conflict: str) -> int:
    """Table upsert (merge-duplicates), e.g. `sender_emails_cache` on `workspace_id,bison_sender_id`."""
    return await store.upsert(table, rows, on_conflict)
