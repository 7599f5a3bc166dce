"""Webhook ingestion policy, independent of HTTP: authenticate, decode, one store call, an honest verdict.

Order of work, and why:

1. **Authenticate first**, from the token alone, before the body is parsed: a request that cannot prove it may
   write is `rejected` and writes nothing (no ledger row, no activity, no workspace); it is counted by the
   caller's metrics and one bounded log line. The global token is compared in constant time; a per-workspace token
   is hashed (sha256) and looked up (cached briefly), and pins its workspace.
2. **The instance comes from configuration** (or from the webhook URL, among the configured instances; or from the
   pinned workspace), never from the body's `event.instance_url`.
3. Decode, then one store call that records and applies the delivery in one transaction (and re-checks a
   per-workspace token there, so a revoked token writes nothing even while cached).

`WebhookIngestor.handle` returns a `Verdict`: a typed `outcome` and what there is to say about it, never an HTTP
status (the service maps outcomes to HTTP in one table, `service/errors.py`); a CLI or a test can call it directly
with the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Literal

import msgspec

from bisonsync.events import EVENT_TYPES, InvalidDelivery, decode_delivery, instance_host
from bisonsync.store import IngestRequest, Store, StoreError, StoreInvalidInput, StoreUnavailable
from bisonsync.store import api as store_api

log = logging.getLogger("bisonsync.ingest")

#: How long a per-workspace token lookup is reused (seconds): found / not found. The ingest call re-checks the
#: token in SQL, so a cached "found" never lets a revoked token write.
TOKEN_CACHE_TTL_S = 30.0
TOKEN_MISS_TTL_S = 5.0
TOKEN_CACHE_SIZE = 4096

UNAVAILABLE = "database unavailable, retry later"
INTERNAL = "internal error"


def hash_token(token: str) -> str:
    """How per-workspace webhook tokens are stored: hex sha256 (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def event_type_label(event_type: str | None) -> str:
    """A metrics-safe label: the type if it is in the catalogue, else `unknown` (labels never come from a body)."""
    return event_type if event_type is not None and event_type in EVENT_TYPES else "unknown"


#: What became of one delivery.
#: Accepted (the sender is done): `applied`; `duplicate` (seen before, counted once); `ignored` (recorded, nothing to
#: apply, kept for replay).
#: Refused, nothing applied: `rejected` (missing or wrong token, checked before the body is read; nothing written);
#: `unknown_instance` (the URL names an instance not served); `malformed` (not JSON or not an Email Bison event);
#: `wrong_type` (not the type the caller requires); `refused` (the database refused a value: kept as failed for
#: `bisonsync replay`, a retry of the same body cannot succeed); `unavailable` (the store is down: retry later);
#: `failed` (any other store error: kept as failed where possible).
Outcome = Literal[
    "applied",
    "duplicate",
    "ignored",
    "rejected",
    "unknown_instance",
    "malformed",
    "wrong_type",
    "refused",
    "unavailable",
    "failed",
]
ACCEPTED: frozenset[Outcome] = frozenset({"applied", "duplicate", "ignored"})
#: `ingest_delivery`'s statuses that accept a delivery (its fourth, `rejected`, is a revoked token)
_ACCEPTED_STATUS: dict[str, Outcome] = {"applied": "applied", "duplicate": "duplicate", "ignored": "ignored"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one delivery (`outcome`) and what there is to report about it."""

    outcome: Outcome
    _: KW_ONLY
    #: the catalogue type, or `unknown` (safe as a metrics label)
    event_type: str = "unknown"
    #: why it was not accepted, fit to show the sender (a constant, the decoder's or the database's message)
    error: str | None = None
    #: the delivery's type as decoded (outside the catalogue too); None when it was not decoded
    delivery_type: str | None = None
    #: the ledger row: the accepted delivery's, or the one kept as failed
    delivery_id: int | None = None
    #: for a duplicate: the ledger row that counted
    duplicate_of: int | None = None
    lead_id: str | None = None
    #: created | updated | not_found (when the event names a lead)
    lead_action: str | None = None
    #: time spent from the call to the store's answer
    processing_time_ms: float | None = None
    workspace_name: str | None = None

    @property
    def accepted(self) -> bool:
        """Applied, duplicate or ignored: the sender need not send it again."""
        return self.outcome in ACCEPTED


@dataclass(frozen=True, slots=True)
class PinnedWorkspace:
    """What a per-workspace token proves: deliveries for this one workspace."""

    workspace_id: str
    instance: str
    bison_workspace_id: int


class UnknownInstance(ValueError):
    """The webhook URL named an instance this deployment does not serve."""


class WebhookIngestor:
    """`instance`: the Email Bison instance every delivery belongs to (the host of BISON_BASE_URL, BISON_INSTANCE,
    or BISONSYNC_DEFAULT_INSTANCE); `instances`: further instances the webhook URL may name (`?instance=`), hosts or
    `*.domain` for any host under a domain; `legacy_instance`: the instance dedup scheme v1 gave bodies without
    `instance_url` (BISONSYNC_DEFAULT_INSTANCE), so their v1 keys are recomputed exactly."""

    def __init__(
        self,
        store: Store,
        *,
        global_token: str | None,
        instance: str = "default",
        instances: Iterable[str] = (),
        legacy_instance: str | None = None,
    ) -> None:
        self.store = store
        self.global_token = global_token
        self.instance = instance_host(instance)
        #: what dedup scheme v1 assumed when a body had no instance_url (BISONSYNC_DEFAULT_INSTANCE)
        self.legacy_instance = instance_host(legacy_instance) if legacy_instance is not None else None
        listed = [i.strip() for i in instances if i.strip()]
        self.instances = frozenset({self.instance, *(instance_host(i) for i in listed if not i.startswith("*."))})
        #: `*.example.com` entries: any host under that domain
        self.instance_domains = tuple("." + instance_host(i[2:]) for i in listed if i.startswith("*."))
        self._tokens: dict[str, tuple[float, PinnedWorkspace | None]] = {}

    # --- authentication --------------------------------------------------------------------------------------

    def _is_global(self, token: str) -> bool:
        return bool(self.global_token) and hmac.compare_digest(token.encode(), (self.global_token or "").encode())

    async def _pinned(self, token_hash: str) -> PinnedWorkspace | None:
        now = time.monotonic()
        cached = self._tokens.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await store_api.resolve_webhook_token(self.store, token_hash)
        pinned = None
        if found is not None:
            pinned = PinnedWorkspace(
                workspace_id=found.workspace_id,
                instance=found.instance,
                bison_workspace_id=found.bison_workspace_id,
            )
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens.clear()  # bounded: random wrong tokens cannot grow it
        self._tokens[token_hash] = (now + (TOKEN_CACHE_TTL_S if pinned else TOKEN_MISS_TTL_S), pinned)
        return pinned

    def forget_tokens(self) -> None:
        """Drop cached token lookups (after tokens were rotated)."""
        self._tokens.clear()

    def _url_instance(self, instance: str | None) -> str | None:
        if instance is None or not instance.strip():
            return None
        try:
            host = instance_host(instance[:300])
        except ValueError:
            raise UnknownInstance("unknown instance") from None
        if host not in self.instances and not host.endswith(self.instance_domains or ("\x00",)):
            raise UnknownInstance("unknown instance")
        return host

    @staticmethod
    def _rejected(reason: str) -> Verdict:
        # one bounded line: a constant reason, nothing from the request
        log.info("webhook delivery rejected: %s", reason)
        return Verdict("rejected", error=reason)

    # --- the delivery ------------------------------------------------------------------------------------------

    async def _record_failed(self, request: IngestRequest, error: str) -> int | None:
        """Keep the payload under its dedup key so the sender's retry (or `bisonsync replay`) applies it later."""
        try:
            result = await store_api.record_failed(self.store, request, error)
        except StoreError as exc:
            log.warning("could not record failed delivery: %s", exc)
            return None
        return result.delivery_id

    async def handle(
        self, body: bytes, token: str | None, *, instance: str | None = None, require_type: str | None = None
    ) -> Verdict:
        """One delivery. `token` as presented (query or header), `instance` as named by the webhook URL (None: the
        configured instance)."""
        started = time.perf_counter()
        if not token:
            return self._rejected("missing webhook token")
        pinned: PinnedWorkspace | None = None
        token_hash: str | None = None
        if not self._is_global(token):
            token_hash = hash_token(token)
            try:
                pinned = await self._pinned(token_hash)
            except StoreUnavailable as exc:
                log.warning("store unavailable while checking a webhook token: %s", exc)
                return Verdict("unavailable", error=UNAVAILABLE)
            except StoreError as exc:
                log.error("webhook token lookup failed: %s", exc)
                return Verdict("failed", error=INTERNAL)
            if pinned is None:
                return self._rejected("invalid webhook token")
        try:
            named = self._url_instance(instance)
        except UnknownInstance:
            if pinned is not None:
                return self._rejected("invalid webhook token")
            return Verdict("unknown_instance", error="unknown instance: not one this deployment serves")
        if pinned is not None and named is not None and named != pinned.instance:
            return self._rejected("invalid webhook token")
        tenant_instance = pinned.instance if pinned is not None else (named or self.instance)

        try:
            delivery = decode_delivery(body, instance=tenant_instance, legacy_instance=self.legacy_instance)
        except InvalidDelivery as exc:
            return Verdict("malformed", error=str(exc))
        if pinned is not None and delivery.workspace_id != pinned.bison_workspace_id:
            return self._rejected("invalid webhook token")  # a workspace token presented for another workspace
        event_type = delivery.event_type
        label = event_type_label(event_type)
        if require_type is not None and event_type != require_type:
            return Verdict(
                "wrong_type", event_type=label, error=f"Not a {require_type} event", delivery_type=event_type
            )
        request = IngestRequest(
            dedup_key=delivery.dedup_key,
            instance=delivery.instance,
            bison_workspace_id=delivery.workspace_id,
            workspace_name=delivery.workspace_name,
            event_type=event_type,
            payload_json=delivery.payload_json,
            received_at=datetime.now(UTC),
            token_hash=token_hash,
            legacy_keys=(delivery.legacy_dedup_key,),
            processing_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        try:
            outcome = await store_api.ingest(self.store, request)
        except StoreUnavailable as exc:
            log.warning("store unavailable for %s: %s", label, exc)
            return Verdict("unavailable", event_type=label, error=UNAVAILABLE, delivery_type=event_type)
        except StoreInvalidInput as exc:
            # the database refused a value (too long to index, out of range, ...): retrying the same body cannot
            # help (the service answers a 4xx); the payload is kept (status failed) for `bisonsync replay`
            message = f"invalid input (SQLSTATE {exc.code}): {str(exc)[:300]}"
            delivery_id = await self._record_failed(_with_processing(request, started), message)
            return Verdict(
                "refused", event_type=label, error=message, delivery_type=event_type, delivery_id=delivery_id
            )
        except StoreError as exc:
            log.error("ingest failed for %s: %s", label, exc)
            await self._record_failed(_with_processing(request, started), str(exc))
            return Verdict("failed", event_type=label, error=INTERNAL, delivery_type=event_type)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        if outcome.status == "rejected":  # the token was revoked since it was cached
            self.forget_tokens()
            return self._rejected("invalid webhook token")
        status = _ACCEPTED_STATUS.get(outcome.status)
        if status is None:  # not a status `ingest_delivery` returns
            log.error("ingest of %s returned status %r", label, outcome.status[:40])
            return Verdict("failed", event_type=label, error=INTERNAL, delivery_type=event_type)
        return Verdict(
            status,
            event_type=label,
            delivery_type=event_type,
            delivery_id=outcome.delivery_id,
            duplicate_of=outcome.duplicate_of,
            lead_id=outcome.lead_id,
            lead_action=outcome.lead_action,
            processing_time_ms=elapsed_ms,
            workspace_name=delivery.workspace_name,
        )


def _with_processing(request: IngestRequest, started: float) -> IngestRequest:
    return msgspec.structs.replace(request, processing_ms=round((time.perf_counter() - started) * 1000, 3))
