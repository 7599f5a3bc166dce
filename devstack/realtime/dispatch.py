"""From a batch of decoded changes to `postgres_changes` frames on the subscribed channels, in commit order.

Per batch: refresh the catalog facts the batch needs, match every change against the channels subscribed to its
table (event, filters, start LSN), run the RLS checks the matches need (batched, see `authz`), then build each
change's `data` once per distinct view (role columns, RLS cut, `select`) and hand every matching channel one frame
with the ids of its bindings that matched. Sinks only enqueue, so a slow socket never stalls the poller.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import msgspec

from devstack.realtime.authz import Authorizer, RlsKey, TableFacts
from devstack.realtime.pgoutput import RelationColumn, RowChange, TupleValues
from devstack.realtime.subscriptions import ChannelSubscription, SubscriptionRegistry
from devstack.realtime.values import JSONValue, TypeCache, to_json

log = logging.getLogger("devstack.realtime")

MAX_RECORD_BYTES = 1024 * 1024
MAX_FIELD_BYTES_WHEN_TOO_LARGE = 64
_encoder = msgspec.json.Encoder(decimal_format="number")


@dataclass(slots=True)
class _Match:
    sub: ChannelSubscription
    ids: list[int]
    select: tuple[str, ...] | None
    rls_key: RlsKey | None


class Dispatcher:
    def __init__(self, registry: SubscriptionRegistry, authz: Authorizer, types: TypeCache) -> None:
        self.registry = registry
        self.authz = authz
        self.types = types
        #: changes handed to at least one channel / frames enqueued (for tests and the benchmark)
        self.delivered_changes = 0
        self.frames = 0

    async def dispatch(self, changes: list[RowChange]) -> None:
        relids = {c.relation.relid for c in changes}
        if not any(self.registry.for_relid(r) for r in relids):
            return
        await self.authz.prefetch(relids, self.registry.roles_for(relids))
        plans: list[list[_Match]] = []
        jobs: dict[RlsKey, list[tuple[int, TupleValues]]] = defaultdict(list)
        for index, change in enumerate(changes):
            matches = self._match(change)
            plans.append(matches)
            for m in matches:
                if m.rls_key is not None and change.new is not None:
                    rows = jobs[m.rls_key]
                    if not rows or rows[-1][0] != index:
                        rows.append((index, change.new))
        visible = await self.authz.visible(dict(jobs)) if jobs else {}
        for index, (change, matches) in enumerate(zip(changes, plans, strict=True)):
            if matches:
                self._deliver(change, index, matches, visible)

    def _match(self, change: RowChange) -> list[_Match]:
        subs = self.registry.for_relid(change.relation.relid)
        if not subs:
            return []
        facts = self.authz.table(change.relation.relid)
        if facts is None:
            return []  # the table is gone: nothing to check columns or RLS against
        needs_rls = facts.rls_enabled and change.kind != "DELETE" and bool(facts.pk)
        out: list[_Match] = []
        for sub in subs:
            ids, select = sub.match(change, rls=facts.rls_enabled)
            if not ids:
                continue
            rls_key: RlsKey | None = None
            if needs_rls and not self.authz.bypasses_rls(sub.role):
                rls_key = (sub.role, sub.claims_json, facts.relid)
            out.append(_Match(sub, ids, select, rls_key))
        return out

    def _deliver(self, change: RowChange, index: int, matches: list[_Match], visible: dict[RlsKey, set[int]]) -> None:
        facts = self.authz.table(change.relation.relid)
        if facts is None:
            return
        views: dict[tuple[str, tuple[str, ...] | None], str] = {}
        sent = False
        for m in matches:
            if m.rls_key is not None and index not in visible.get(m.rls_key, ()):
                continue
            view = (m.sub.role, m.select)
            data = views.get(view)
            if data is None:
                columns = self.authz.selectable(m.sub.role, facts.relid)
                data = _encoder.encode(build_data(change, facts, columns, m.select, self.types)).decode()
                views[view] = data
            try:
                m.sub.sink.deliver(m.ids, data)
            except Exception:  # a broken sink must not stop delivery to the others
                log.exception("realtime delivery to a channel failed")
                continue
            self.frames += 1
            sent = True
        if sent:
            self.delivered_changes += 1


def build_data(
    change: RowChange,
    facts: TableFacts,
    selectable: frozenset[str],
    select: tuple[str, ...] | None,
    types: TypeCache,
) -> dict[str, JSONValue]:
    """`payload.data` of a `postgres_changes` frame for one subscriber view (apply_rls's output)."""
    base: dict[str, JSONValue] = {"schema": facts.schema, "table": facts.name, "type": change.kind}
    if not facts.pk:
        return _error_data(change, base, "Error 400: Bad Request, no primary key")
    if not all(col in selectable for col in facts.pk):
        return _error_data(change, base, "Error 401: Unauthorized")
    shown = [c for c in change.relation.columns if c.name in selectable and (select is None or c.name in select)]
    data: dict[str, JSONValue] = {
        **base,
        "commit_timestamp": change.commit_timestamp,
        "columns": [{"name": c.name, "type": types.name(c.type_oid)} for c in shown],
    }
    errors: list[JSONValue] = []
    if change.kind in ("INSERT", "UPDATE") and change.new is not None:
        record = _record(change.new, shown, types)
        if len(_encoder.encode(record)) > MAX_RECORD_BYTES:
            record = {k: v for k, v in record.items() if len(_encoder.encode(v)) <= MAX_FIELD_BYTES_WHEN_TOO_LARGE}
            errors.append("Error 413: Payload Too Large")
        data["record"] = record
    if change.kind in ("UPDATE", "DELETE"):
        old = change.old or {}
        cols = shown
        if change.kind == "DELETE" and facts.rls_enabled:  # deletes can't be secured: only the key goes out
            cols = [c for c in shown if c.name in facts.pk]
        data["old_record"] = _record(old, cols, types)
    data["errors"] = errors or None
    return data


def _record(values: TupleValues, columns: list[RelationColumn], types: TypeCache) -> dict[str, JSONValue]:
    return {c.name: to_json(values[c.name], c.type_oid, types) for c in columns if c.name in values}


def _error_data(change: RowChange, base: dict[str, JSONValue], error: str) -> dict[str, JSONValue]:
    # The real server's error rows carry no columns, record or commit time (realtime-py drops them).
    data: dict[str, JSONValue] = {**base, "commit_timestamp": None, "columns": None}
    if change.kind in ("INSERT", "UPDATE"):
        data["record"] = None
    if change.kind in ("UPDATE", "DELETE"):
        data["old_record"] = None
    data["errors"] = [error]
    return data
