"""`bisonsync webhooks install|verify` against the simulator: every event, every workspace, idempotent."""

from __future__ import annotations

import argparse

import asyncpg
import msgspec
import pytest

from bisonsync.bison import SUBSCRIBABLE_EVENT_TYPES as EVENT_TYPES
from bisonsync.bison import BisonClient, BisonServerError, WorkspaceSession
from bisonsync.commands import webhooks as webhooks_cmd
from bisonsync.ingest import WebhookIngestor
from bisonsync.store import Store
from bisonsync.webhooks_admin import (
    base_url,
    hash_token,
    install_webhooks,
    redact_url,
    url_token,
    verify_webhooks,
    with_token,
)
from devstack.simulator import SimulatedBison

URL = "https://sync.example.com/webhooks/bison"
LEGACY = "https://oldproject.supabase.co/functions/v1/universal-bison-webhook"
GLOBAL = "global-webhook-token-for-tests"


async def stored_hash(db: asyncpg.Connection, instance: str, team: int) -> str | None:
    value: str | None = await db.fetchval(
        "select c.webhook_token_hash from public.workspace_credentials c join public.workspaces w "
        "on w.id = c.workspace_id where w.instance = $1 and w.bison_workspace_id = $2",
        instance,
        team,
    )
    return value


def test_url_helpers() -> None:
    assert base_url("HTTPS://Sync.Example.com/webhooks/bison/?token=abc&x=1") == URL
    assert with_token(URL + "?x=1&token=old", "new") == URL + "?x=1&token=new"
    assert url_token(with_token(URL, "s3cret-token")) == "s3cret-token"
    assert redact_url(URL + "?token=s3cret-token") == URL + "?token=...oken"
    with pytest.raises(ValueError):
        base_url("ftp://x/y")


async def test_install_every_event_every_workspace_idempotently(
    store: Store, db: asyncpg.Connection, sim: SimulatedBison, bison: BisonClient, instance: str
) -> None:
    first = await install_webhooks(bison, store, URL, instance=instance)
    assert first.ok and first.instance == instance and first.event_types == list(EVENT_TYPES)
    assert {w.bison_workspace_id for w in first.workspaces} == set(sim.teams)
    assert {w.action for w in first.workspaces} == {"created"}
    for w in first.workspaces:
        [hook] = sim.webhooks[w.bison_workspace_id].values()
        assert hook.events == list(EVENT_TYPES) and base_url(hook.url) == URL
        assert w.token is not None and url_token(hook.url) == w.token
        assert await stored_hash(db, instance, w.bison_workspace_id) == hash_token(w.token)
    assert len({w.token for w in first.workspaces}) == len(sim.teams)  # one token per workspace

    second = await install_webhooks(bison, store, URL, instance=instance)
    assert {w.action for w in second.workspaces} == {"unchanged"}
    assert all(w.token is None for w in second.workspaces)  # kept, not rotated
    for w in first.workspaces:
        assert len(sim.webhooks[w.bison_workspace_id]) == 1
        assert w.token is not None
        assert await stored_hash(db, instance, w.bison_workspace_id) == hash_token(w.token)

    verified = await verify_webhooks(bison, URL, store=store, instance=instance)
    assert verified.ok and all(w.token_ok for w in verified.workspaces)

    # the printed token is one the service accepts for that workspace; another workspace's is refused
    team, other = sorted(sim.teams)[:2]
    async with bison.workspace(team) as ws:
        sample = await ws.sample_payload("email_sent")
    # real samples carry no instance_url (or a canned one): name the deployment's instance, as its config would
    sample["event"]["instance_url"] = f"https://{instance}"
    body = msgspec.json.encode(sample)
    tokens = {w.bison_workspace_id: w.token for w in first.workspaces}
    ingestor = WebhookIngestor(store, global_token=None)
    assert (await ingestor.handle(body, tokens[team])).outcome == "applied"
    assert (await ingestor.handle(body, tokens[other])).outcome == "rejected"

    rotated = await install_webhooks(bison, store, URL, instance=instance, rotate=True, bison_workspace_ids=[team])
    [r] = rotated.workspaces
    assert r.action == "updated" and r.token not in (None, tokens[team])
    assert url_token(next(iter(sim.webhooks[team].values())).url) == r.token


async def test_existing_partial_and_duplicate_registrations_are_fixed(
    store: Store, db: asyncpg.Connection, sim: SimulatedBison, bison: BisonClient, instance: str
) -> None:
    team = sorted(t for t in sim.teams if t != sim.parent_id)[0]
    partial = sim.create_webhook(team, "old bisonsync", URL + "?token=stale", ["lead_interested", "email_sent"])
    duplicate = sim.create_webhook(team, "copy", URL + "/", ["email_bounced"])
    legacy = sim.create_webhook(team, "predecessor", LEGACY, ["lead_interested"])
    unrelated = sim.create_webhook(team, "n8n", "https://n8n.example.com/hook", ["lead_replied"])

    before = await verify_webhooks(bison, URL, store=store, instance=instance, bison_workspace_ids=[team])
    [v] = before.workspaces
    assert not v.ok and v.registered and v.duplicate_ids == [duplicate.id] and v.token_ok is False
    assert len(v.missing_events) == len(EVENT_TYPES) - 3
    assert [r.id for r in v.legacy] == [legacy.id] and "double delivery" in v.warnings[0]

    report = await install_webhooks(bison, store, URL, instance=instance, bison_workspace_ids=[team])
    [w] = report.workspaces
    assert w.action == "updated" and w.webhook_id == partial.id and w.duplicates_removed == [duplicate.id]
    assert set(w.events_added) == set(EVENT_TYPES) - {"lead_interested", "email_sent"}
    assert [(r.id, r.url) for r in w.legacy] == [(legacy.id, LEGACY)]
    hooks = sim.webhooks[team]
    assert set(hooks) == {partial.id, legacy.id, unrelated.id}  # the predecessor's and others' are left alone
    assert hooks[partial.id].events == list(EVENT_TYPES) and url_token(hooks[partial.id].url) == w.token

    after = await verify_webhooks(bison, URL, store=store, instance=instance, bison_workspace_ids=[team])
    [v] = after.workspaces
    assert v.ok and v.missing_events == [] and v.token_ok is True and v.warnings  # legacy still warned about


async def test_verify_reports_missing_events_and_workspaces(
    store: Store, sim: SimulatedBison, bison: BisonClient, instance: str
) -> None:
    await install_webhooks(bison, store, URL, instance=instance, global_token=GLOBAL)
    teams = sorted(sim.teams)
    for team in teams:  # global mode: the same token everywhere
        [hook] = sim.webhooks[team].values()
        assert url_token(hook.url) == GLOBAL
    ok = await verify_webhooks(bison, URL, store=store, instance=instance, global_token=GLOBAL)
    assert ok.ok

    trimmed, gone = teams[1], teams[2]
    [hook] = sim.webhooks[trimmed].values()
    hook.events = [e for e in hook.events if e not in ("email_sent", "email_bounced")]
    sim.webhooks[gone].clear()
    report = await verify_webhooks(bison, URL, store=store, instance=instance, global_token=GLOBAL)
    by_team = {w.bison_workspace_id: w for w in report.workspaces}
    assert not report.ok
    assert by_team[trimmed].missing_events == ["email_sent", "email_bounced"]
    assert by_team[gone].registered is False and by_team[gone].problems == ["no registration of our URL"]
    assert all(by_team[t].ok for t in teams if t not in (trimmed, gone))
    # without the global token the service would refuse these URLs (no per-workspace token matches)
    strict = await verify_webhooks(bison, URL, store=store, instance=instance, bison_workspace_ids=[teams[0]])
    assert strict.workspaces[0].token_ok is False
    # reports never carry a token in clear
    assert GLOBAL not in msgspec.json.encode(report).decode()


def test_cli_parses() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    webhooks_cmd.register(sub)
    from bisonsync.commands import analytics, reconcile

    analytics.register(sub)
    reconcile.register(sub)
    args = parser.parse_args(["webhooks", "install", "--url", URL, "--global-token", "--workspace", "3"])
    assert args.global_token and args.workspace == [3] and callable(args.handler)
    args = parser.parse_args(["reconcile", "--month", "2026-10"])
    assert args.month.isoformat() == "2026-10-01"
    args = parser.parse_args(["snapshot", "--date", "2026-11-20"])
    assert args.date.isoformat() == "2026-11-20"
    args = parser.parse_args(["alerts", "check", "--dry-run"])
    assert args.dry_run


async def test_failed_registration_keeps_the_working_token(
    store: Store,
    db: asyncpg.Connection,
    sim: SimulatedBison,
    bison: BisonClient,
    instance: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team = sorted(sim.teams)[0]
    [first] = (await install_webhooks(bison, store, URL, instance=instance, bison_workspace_ids=[team])).workspaces
    assert first.token is not None

    async def failing_put(*args: object, **kwargs: object) -> None:
        raise BisonServerError("HTTP 500: Server Error", status_code=500, method="PUT", path="/api/webhook-url/1")

    monkeypatch.setattr(WorkspaceSession, "update_webhook", failing_put)
    [failed] = (
        await install_webhooks(bison, store, URL, instance=instance, rotate=True, bison_workspace_ids=[team])
    ).workspaces
    monkeypatch.undo()
    assert failed.action == "error" and failed.error and failed.token is None
    # Email Bison still sends the first token, and the database still accepts it
    assert url_token(next(iter(sim.webhooks[team].values())).url) == first.token
    assert await stored_hash(db, instance, team) == hash_token(first.token)
