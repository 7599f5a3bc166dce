"""Helpers for the sync tests: the simulator's truth, the cache as the database has it, expected prices."""

from __future__ import annotations

import json
import math
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg

from bisonsync.sync.classify import TagRules, domain_of
from devstack.simulator import SimulatedBison

RULES = TagRules()


async def use_json(conn: asyncpg.Connection) -> asyncpg.Connection:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


def truth(sim: SimulatedBison, teams: set[int] | None = None) -> dict[tuple[int, int], Any]:
    """(team id, mailbox id) -> the simulator's mailbox record, for every listed mailbox."""
    return {
        (team, mid): sim.mailboxes[mid]
        for team, ids in sim.team_mailboxes.items()
        if teams is None or team in teams
        for mid in ids
    }


async def cache(conn: asyncpg.Connection, instance: str, *, live_only: bool = False) -> dict[tuple[int, int], Any]:
    rows = await conn.fetch(
        "select w.bison_workspace_id as team, s.*, s.xmin::text as row_version"
        " from public.sender_emails_cache s join public.workspaces w on w.id = s.workspace_id"
        " where w.instance = $1" + (" and s.deleted_at is null" if live_only else ""),
        instance,
    )
    return {(r["team"], r["bison_sender_id"]): dict(r) for r in rows}


async def history(conn: asyncpg.Connection, instance: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "select w.bison_workspace_id as team, h.* from public.mailbox_status_history h"
        " join public.workspaces w on w.id = h.workspace_id where w.instance = $1 order by h.id",
        instance,
    )
    return [dict(r) for r in rows]


async def workspace_uuid(conn: asyncpg.Connection, instance: str, team: int) -> Any:
    return await conn.fetchval(
        "select id from public.workspaces where instance = $1 and bison_workspace_id = $2", instance, team
    )


def expected_price(provider: str | None, reseller: str | None, n: int) -> Decimal:
    r, p = (reseller or "").lower(), (provider or "").lower()
    if "cheapinboxes" in r or r == "zapmail":
        return Decimal("3.00")
    if r == "mailr":
        return Decimal("0.91")
    if r == "scaledmail":
        return (Decimal(50) / Decimal(n)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if p in ("google", "gmail"):
        return Decimal("3.00")
    return Decimal("0.00")


def expected_volume(provider: str | None, reseller: str | None, n: int) -> int:
    r, p = (reseller or "").lower(), (provider or "").lower()
    if r == "mailr":
        return math.floor(495 / n)
    if r == "scaledmail":
        return 5 if n >= 49 else 8 if n >= 25 else 5
    if p in ("google", "gmail", "microsoft", "outlook"):
        return 20
    return 0


def assert_cache_matches(sim: SimulatedBison, rows: dict[tuple[int, int], Any], teams: set[int] | None = None) -> None:
    """Every listed mailbox cached once under its own workspace, with Bison's values and our classification,
    priced with the whole-workspace per-domain count."""
    want = truth(sim, teams)
    got = {k: v for k, v in rows.items() if teams is None or k[0] in teams}
    assert set(got) == set(want)
    domains: Counter[tuple[int, str | None]] = Counter((team, domain_of(m.email)) for (team, _), m in want.items())
    for key, mailbox in want.items():
        row = got[key]
        kind = RULES.classify(t.name for t in mailbox.tags)
        n = domains[(key[0], domain_of(mailbox.email))]
        assert row["deleted_at"] is None, key
        assert (row["email_address"], row["status"], row["daily_limit"], row["emails_sent_count"]) == (
            mailbox.email.lower(),
            mailbox.status,
            mailbox.daily_limit,
            mailbox.emails_sent_count,
        ), key
        assert (row["email_provider"], row["provider_tag"], row["reseller"], row["reseller_tag"]) == (
            kind.provider,
            kind.provider_tag,
            kind.reseller,
            kind.reseller_tag,
        ), key
        assert [t["name"] for t in json.loads(row["tags"])] == [t.name for t in mailbox.tags]
        assert row["price"] == expected_price(kind.provider, kind.reseller, n), key
        assert row["volume_per_account"] == expected_volume(kind.provider, kind.reseller, n), key
