"""Alerts: conditions, dedup by window, batching, per-workspace Slack routing, retries, never lost."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec
import pytest

from bisonsync.alerts import (
    MAILBOX_DISCONNECTED,
    MAILBOX_FAILED,
    REPLY_RATE_DROP,
    SYNC_RUN_FAILED,
    WEBHOOK_SILENCE,
    Alert,
    AlertConfig,
    AlertWorker,
    anchored_window,
    bucket_start,
    evaluate_alerts,
    render_alert,
    render_batch,
    url_label,
)
from bisonsync.analytics import snapshot_providers
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore, Store

from .conftest import GLOBAL_SLACK, FakeSlack, MailboxMaker, WorkerMaker, WorkspaceMaker, set_status


async def set_last_delivery(db: asyncpg.Connection, workspace_id: str, at: datetime) -> None:
    await db.execute(
        """insert into public.webhook_activity (workspace_id, last_delivery_at, last_event_type, last_status,
                                                deliveries_total)
           values ($1::uuid, $2, 'email_sent', 'applied', 1)
           on conflict (workspace_id) do update set last_delivery_at = excluded.last_delivery_at""",
        workspace_id,
        at,
    )


async def alert_row(db: asyncpg.Connection, key: str) -> dict[str, object]:
    row = await db.fetchrow("select * from public.alert_log where alert_key = $1", key)
    assert row is not None, key
    return dict(row)


async def silence_alerts(store: Store, ws: str, at: datetime) -> list[Alert]:
    return await evaluate_alerts(store, at, workspace_ids=[ws], conditions=[WEBHOOK_SILENCE])


def mentioning(slack: FakeSlack, name: str) -> list[str]:
    return [str(p.body) for p in slack.posts if name in str(p.body)]


# -- pure helpers -------------------------------------------------------------------------------------------------


def test_windows() -> None:
    t = datetime(2026, 11, 20, 15, 42, tzinfo=UTC)
    assert bucket_start(t, timedelta(hours=24)) == datetime(2026, 11, 20, tzinfo=UTC)
    assert bucket_start(t, timedelta(hours=6)) == datetime(2026, 11, 20, 12, tzinfo=UTC)
    anchor = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert anchored_window(anchor, t, timedelta(hours=24)) == anchor
    assert anchored_window(anchor, anchor + timedelta(hours=24), timedelta(hours=24)) == anchor + timedelta(hours=24)
    assert anchored_window(anchor, anchor - timedelta(minutes=1), timedelta(hours=24)) == anchor


def test_config_from_env() -> None:
    cfg = AlertConfig.from_env({"BISONSYNC_ALERT_SILENCE_MINUTES": "15", "BISONSYNC_ALERT_DROP_THRESHOLD_PCT": "12.5"})
    assert (cfg.silence_minutes, cfg.drop_threshold_pct, cfg.mailbox_window_hours) == (15, 12.5, 24.0)
    with pytest.raises(ValueError, match="BISONSYNC_ALERT_SILENCE_MINUTES"):
        AlertConfig.from_env({"BISONSYNC_ALERT_SILENCE_MINUTES": "soon"})
    with pytest.raises(ValueError):
        AlertConfig.from_env({"BISONSYNC_ALERT_SILENCE_MINUTES": "0"})


def test_block_kit_messages() -> None:
    when = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    one = Alert(
        key="k1",
        condition=MAILBOX_DISCONNECTED,
        severity="critical",
        window_start=when,
        title="Account disconnected: rep@a.com (Client <A>)",
        workspace_name="Client <A>",
        subject="rep@a.com",
        occurred_at=when,
        fields={"Workspace": "Client <A>", "Mailbox": "rep@a.com", "Status": "Connected → Disconnected"},
    )
    msg = render_alert(one)
    assert msg["text"] == ":rotating_light: Account disconnected: rep@a.com (Client <A>)"
    blocks = msg["blocks"]
    assert isinstance(blocks, list)
    assert [b["type"] for b in blocks] == ["section", "divider", "section", "context"]
    assert "Client &lt;A&gt;" in str(blocks[0]) and len(blocks[2]["fields"]) == 3

    many = [
        Alert(
            key=f"k{i}",
            condition=MAILBOX_DISCONNECTED if i % 4 else WEBHOOK_SILENCE,
            severity="critical" if i % 4 else "warning",
            window_start=when,
            title=f"t{i}",
            workspace_name="Client A",
            subject=f"m{i}@a.com",
        )
        for i in range(40)
    ]
    batch = render_batch(many, list_max=20)
    text = str(batch["text"])
    assert text.startswith(":rotating_light: 40 alerts:") and "30 mailboxes disconnected" in text
    assert "10 workspaces without webhooks" in text
    body = str(batch["blocks"])
    assert "…and 10 more" in body and body.count("•") == 30
    assert len(batch["blocks"]) <= 50  # type: ignore[arg-type]


# -- conditions ---------------------------------------------------------------------------------------------------


async def test_webhook_silence_condition(db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker) -> None:
    now = datetime.now(UTC)
    silent = await make_workspace(name="Silent Client")
    await set_last_delivery(db, silent, now - timedelta(minutes=61))
    recent = await make_workspace(name="Busy Client")
    await set_last_delivery(db, recent, now - timedelta(minutes=59))
    never = await make_workspace(name="Never Registered")  # no delivery ever: no silence alert
    inactive = await make_workspace(name="Paused Client")
    await set_last_delivery(db, inactive, now - timedelta(days=3))
    await db.execute("update public.workspaces set active = false where id = $1::uuid", inactive)
    scope = [silent, recent, never, inactive]

    alerts = await evaluate_alerts(store, now, workspace_ids=scope, conditions=[WEBHOOK_SILENCE])
    assert [a.workspace_id for a in alerts] == [silent]
    [alert] = alerts
    assert alert.condition == WEBHOOK_SILENCE and alert.severity == "warning"
    assert "Silent Client" in alert.title and alert.fields["Threshold"] == "60 min"

    cfg = AlertConfig(silence_minutes=30)
    got = await evaluate_alerts(store, now, config=cfg, workspace_ids=scope, conditions=[WEBHOOK_SILENCE])
    assert {a.workspace_id for a in got} == {silent, recent}


async def test_mailbox_transition_condition(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_mailbox: MailboxMaker
) -> None:
    ws = await make_workspace(name="Mailbox Client")
    a = await make_mailbox(ws, email="a@client.example")
    b = await make_mailbox(ws, email="b@client.example")
    await make_mailbox(ws, email="c@client.example", status="Disconnected")  # initial state: no transition
    await set_status(db, a, "Disconnected")
    await set_status(db, b, "Failed", source="poll")
    now = datetime.now(UTC) + timedelta(seconds=1)

    alerts = await evaluate_alerts(store, now, workspace_ids=[ws])
    by_subject = {x.subject: x for x in alerts}
    assert set(by_subject) == {"a@client.example", "b@client.example"}
    assert by_subject["a@client.example"].condition == MAILBOX_DISCONNECTED
    assert by_subject["b@client.example"].condition == MAILBOX_FAILED
    assert by_subject["a@client.example"].title == "Account disconnected: a@client.example (Mailbox Client)"
    assert by_subject["a@client.example"].fields["Workspace disconnect rate"] == "100% (3 of 3 mailboxes)"

    # flapping inside one window: the same key, so one alert
    await set_status(db, a, "Connected")
    await set_status(db, a, "Disconnected")
    again = await evaluate_alerts(store, datetime.now(UTC) + timedelta(seconds=1), workspace_ids=[ws])
    [flap] = [x for x in again if x.subject == "a@client.example"]
    assert flap.key == by_subject["a@client.example"].key

    # a scan starting after the transitions finds nothing
    assert await evaluate_alerts(store, now, workspace_ids=[ws], since=now) == []


async def test_reply_rate_drop_condition(
    db: asyncpg.Connection,
    store: Store,
    make_workspace: WorkspaceMaker,
    make_mailbox: MailboxMaker,
    instance: str,
    unique_ws: int,
) -> None:
    ws = await make_workspace()
    await make_mailbox(ws, provider="Gmail", sent=2000, unique_replied=100)  # 5 %
    day = date(2300, 1, 1) + timedelta(days=unique_ws % 20_000)
    await snapshot_providers(store, day - timedelta(days=1))
    await db.execute(
        "update public.sender_emails_cache set unique_replied_count = 50 where workspace_id = $1::uuid", ws
    )
    await snapshot_providers(store, day)
    at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    alerts = [a for a in await evaluate_alerts(store, at, conditions=[REPLY_RATE_DROP]) if instance in a.key]
    [alert] = alerts
    assert alert.key == f"reply_rate_drop:{instance}:Gmail:{day.isoformat()}"
    assert "fell 50%" in alert.title and alert.fields["Before"].startswith("5%")
    strict = AlertConfig(drop_threshold_pct=50)
    assert [
        a for a in await evaluate_alerts(store, at, config=strict, conditions=[REPLY_RATE_DROP]) if instance in a.key
    ] == []


async def test_sync_run_failed_condition(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, instance: str
) -> None:
    ok_ws = await make_workspace(name="Synced Fine")
    bad_ws = await make_workspace(name="Sync Client")
    job, holder = f"mailboxes:{instance}", "test-poller"
    started = msgspec.json.decode(
        await db.fetchval("select public.start_sync_run($1, $2, 60, $3)::text", job, holder, instance)
    )
    run_id = uuid.UUID(started["run_id"])
    await db.execute(  # one empty page: a complete listing
        "select public.sync_mailbox_page($1, $2::uuid, 1, null, '[]'::jsonb, now(), 0, $3)", run_id, ok_ws, holder
    )
    await db.execute("select public.finish_workspace_sync($1, $2::uuid, true, null, $3)", run_id, ok_ws, holder)
    await db.execute(
        "select public.finish_workspace_sync($1, $2::uuid, false, 'HTTP 500 on page 3', $3)", run_id, bad_ws, holder
    )
    finished = msgspec.json.decode(await db.fetchval("select public.finish_sync_run($1, $2)::text", run_id, holder))
    assert finished["status"] == "partial"

    now = datetime.now(UTC) + timedelta(seconds=1)
    alerts = await evaluate_alerts(store, now, workspace_ids=[ok_ws, bad_ws], conditions=[SYNC_RUN_FAILED])
    [alert] = alerts
    assert alert.condition == SYNC_RUN_FAILED and alert.workspace_id == bad_ws and alert.severity == "warning"
    assert alert.title == "Mailbox sync failed: Sync Client" and alert.fields["Error"] == "HTTP 500 on page 3"
    # the same workspace failing again in the same window is the same alert
    again = await evaluate_alerts(store, now, workspace_ids=[bad_ws], conditions=[SYNC_RUN_FAILED])
    assert [a.key for a in again] == [alert.key]


# -- delivery -----------------------------------------------------------------------------------------------------


async def test_dedup_one_post_per_window(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_worker: WorkerMaker, slack: FakeSlack
) -> None:
    ws = await make_workspace(name="Dedup Client")
    t0 = datetime.now(UTC)
    await set_last_delivery(db, ws, t0 - timedelta(minutes=90))
    worker = make_worker()

    async def check(at: datetime) -> None:
        for alert in await silence_alerts(store, ws, at):
            await worker.enqueue(alert)
        await worker.flush()

    await check(t0)
    await check(t0 + timedelta(minutes=5))  # same condition, same window
    assert len(mentioning(slack, "Dedup Client")) == 1
    assert {p.url for p in slack.posts} == {GLOBAL_SLACK}

    # a restarted service (new worker) does not re-send it either
    await make_worker().flush()
    assert len(mentioning(slack, "Dedup Client")) == 1

    await check(t0 + timedelta(hours=24, minutes=1))  # the next window: reminded once more
    assert len(mentioning(slack, "Dedup Client")) == 2
    rows = await db.fetch(
        "select sent_at, attempts from public.alert_log where workspace_id = $1::uuid order by window_start", ws
    )
    assert len(rows) == 2 and all(r["sent_at"] is not None and r["attempts"] == 1 for r in rows)

    # a new silence episode (a delivery, then silence again) is a new alert
    await set_last_delivery(db, ws, t0 + timedelta(hours=30))
    await check(t0 + timedelta(hours=32))
    assert len(mentioning(slack, "Dedup Client")) == 3


async def test_forty_disconnects_are_one_message(
    db: asyncpg.Connection,
    store: Store,
    make_workspace: WorkspaceMaker,
    make_mailbox: MailboxMaker,
    make_worker: WorkerMaker,
    slack: FakeSlack,
) -> None:
    ws = await make_workspace(name="Burst Client")
    for i in range(40):
        mailbox = await make_mailbox(ws, email=f"burst{i:02d}@client.example")
        await set_status(db, mailbox, "Disconnected")
    alerts = await evaluate_alerts(store, datetime.now(UTC) + timedelta(seconds=1), workspace_ids=[ws])
    assert len(alerts) == 40

    worker = make_worker(batch_delay_s=0.3)
    worker.start()
    for alert in alerts:
        await worker.enqueue(alert)
    for _ in range(100):
        if slack.posts:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    await worker.stop()
    [post] = [p for p in slack.posts if "Burst Client" in str(p.body)]
    text = str(post.body["text"])
    assert "40 mailboxes disconnected" in text
    blocks = str(post.body["blocks"])
    assert "burst00@client.example" in blocks and "…and 20 more" in blocks and "Burst Client" in blocks
    unsent = await db.fetchval(
        "select count(*) from public.alert_log where workspace_id = $1::uuid and sent_at is null", ws
    )
    assert unsent == 0


async def test_slack_down_alerts_are_kept_and_retried(
    db: asyncpg.Connection,
    store: Store,
    make_workspace: WorkspaceMaker,
    make_worker: WorkerMaker,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = await make_workspace(name="Outage Client")
    t0 = datetime.now(UTC)
    await set_last_delivery(db, ws, t0 - timedelta(hours=2))
    [alert] = await silence_alerts(store, ws, t0)

    slack.down_status = 503
    worker = make_worker()
    await worker.enqueue(alert)
    with caplog.at_level(logging.INFO, logger="bisonsync"):
        report = await worker.flush()
    assert report.sent == 0 and report.failed >= 1 and report.messages == 1
    assert slack.attempts == 3  # send_attempts within the round
    row = await alert_row(db, alert.key)
    assert row["sent_at"] is None and row["attempts"] == 3 and row["last_error"] == "slack: HTTP 503"
    assert row["claimed_until"] is None
    next_at = row["next_attempt_at"]
    assert isinstance(next_at, datetime) and next_at > t0 + timedelta(minutes=2)
    # the secret URL never reaches a log, only a hash naming it
    assert GLOBAL_SLACK not in caplog.text and "slack.test" not in caplog.text
    assert url_label(GLOBAL_SLACK) in caplog.text

    # not due yet: nothing is sent, even with Slack back
    slack.down_status = None
    assert (await worker.flush()).claimed == 0
    # due later (here: a round "in the future"), from a freshly started worker: sent exactly once
    later = next_at + timedelta(seconds=1)
    report = await make_worker().flush(now=later)
    assert report.sent >= 1 and len(mentioning(slack, "Outage Client")) == 1
    row = await alert_row(db, alert.key)
    assert row["sent_at"] is not None and row["attempts"] == 4 and row["last_error"] is None


async def test_rate_limit_is_honoured(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_worker: WorkerMaker, slack: FakeSlack
) -> None:
    ws = await make_workspace(name="Throttled Client")
    t0 = datetime.now(UTC)
    await set_last_delivery(db, ws, t0 - timedelta(hours=2))
    [alert] = await silence_alerts(store, ws, t0)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    worker = make_worker()
    worker._sleep = sleep
    slack.fail(1, 429, {"Retry-After": "7"})
    await worker.enqueue(alert)
    report = await worker.flush()
    assert report.sent >= 1 and slept == [7.0] and slack.attempts == 2

    # a Retry-After beyond the cap is not waited out in the round: the alert is due again after it
    ws2 = await make_workspace(name="Throttled Client 2")
    await set_last_delivery(db, ws2, t0 - timedelta(hours=2))
    [alert2] = await silence_alerts(store, ws2, t0)
    slack.fail(1, 429, {"Retry-After": "600"})
    await worker.enqueue(alert2)
    report = await worker.flush()
    assert report.failed >= 1
    row = await alert_row(db, alert2.key)
    next_at = row["next_attempt_at"]
    assert isinstance(next_at, datetime) and next_at >= t0 + timedelta(seconds=590)


async def test_per_workspace_slack_and_fallback(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_worker: WorkerMaker, slack: FakeSlack
) -> None:
    own = await make_workspace(name="Own Channel")
    fallback = await make_workspace(name="Ref Not In Environment")
    plain = await make_workspace(name="Global Only")
    ref = f"SLACK_TEST_{uuid.uuid4().hex[:8].upper()}"
    for ws, name in ((own, ref), (fallback, ref + "_MISSING")):
        await db.execute(
            "insert into public.workspace_credentials (workspace_id, slack_webhook_ref) values ($1::uuid, $2)", ws, name
        )
    t0 = datetime.now(UTC)
    for ws in (own, fallback, plain):
        await set_last_delivery(db, ws, t0 - timedelta(hours=3))
    alerts = await evaluate_alerts(store, t0, workspace_ids=[own, fallback, plain], conditions=[WEBHOOK_SILENCE])
    assert len(alerts) == 3

    own_url = "https://slack.test/hooks/own-channel-7777"
    worker = make_worker(environ={ref: own_url})
    for alert in alerts:
        await worker.enqueue(alert)
    report = await worker.flush()
    assert report.sent >= 3 and report.messages == 2
    by_url = {p.url: p for p in slack.posts}
    assert set(by_url) == {own_url, GLOBAL_SLACK}
    assert "Own Channel" in str(by_url[own_url].body) and "Own Channel" not in str(by_url[GLOBAL_SLACK].body)
    assert "Ref Not In Environment" in str(by_url[GLOBAL_SLACK].body) and "Global Only" in str(
        by_url[GLOBAL_SLACK].body
    )


async def test_no_destination_keeps_alerts(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_worker: WorkerMaker, slack: FakeSlack
) -> None:
    ws = await make_workspace(name="Nowhere Client")
    t0 = datetime.now(UTC)
    await set_last_delivery(db, ws, t0 - timedelta(hours=2))
    [alert] = await silence_alerts(store, ws, t0)
    worker = make_worker(slack_url=None)
    await worker.enqueue(alert)
    report = await worker.flush()
    assert report.undeliverable >= 1 and slack.attempts == 0
    row = await alert_row(db, alert.key)
    assert row["sent_at"] is None and "no Slack destination" in str(row["last_error"])


async def test_enqueue_never_blocks_or_raises(make_workspace: WorkspaceMaker, store: Store, slack: FakeSlack) -> None:
    ws = await make_workspace()

    def alert(title: str) -> Alert:
        return Alert(
            key=f"test:{ws}:{uuid.uuid4()}",
            condition=WEBHOOK_SILENCE,
            severity="info",
            window_start=datetime.now(UTC),
            title=title,
            workspace_id=ws,
        )

    # a full queue drops (and counts) instead of blocking
    http = slack.client()
    small = AlertWorker(store, Settings(slack_webhook_url=GLOBAL_SLACK), http, config=AlertConfig(queue_max=1))
    for _ in range(3):
        await asyncio.wait_for(small.enqueue(alert("dropped")), 0.1)
    assert small.dropped == 2
    await small.stop()

    # the database is down: enqueue still returns at once, the round keeps the alert in memory
    dead = PostgresStore("postgresql://postgres:postgres@127.0.0.1:9/postgres", max_size=1, command_timeout=1)
    worker = AlertWorker(dead, Settings(slack_webhook_url=GLOBAL_SLACK), http, config=AlertConfig())
    await asyncio.wait_for(worker.enqueue(alert("kept in memory")), 0.1)
    report = await worker.flush()
    assert report.errors and report.recorded == 0
    assert not any("kept in memory" in t for t in slack.texts())
    assert "unrecorded=1" in repr(worker)
    # once the database is back (here: another store), the same worker records and sends it
    worker.store = store
    report = await worker.flush()
    assert report.recorded == 1 and any("kept in memory" in t for t in slack.texts())
    await worker.stop()
    await http.aclose()


async def test_run_checks_records_advances_and_sends(
    db: asyncpg.Connection, store: Store, make_workspace: WorkspaceMaker, make_worker: WorkerMaker, slack: FakeSlack
) -> None:
    ws = await make_workspace(name="Scheduled Client")
    now = datetime.now(UTC)
    await set_last_delivery(db, ws, now - timedelta(hours=5))
    worker = make_worker()
    worker.start()
    new = await worker.run_checks(now)
    assert any(a.workspace_id == ws for a in new)
    cursor = await db.fetchval("select scanned_until from public.alert_scan_state where scan = 'mailbox_transitions'")
    assert cursor is not None and cursor >= now
    for _ in range(100):
        if any("Scheduled Client" in str(p.body) for p in slack.posts):
            break
        await asyncio.sleep(0.05)
    assert any("Scheduled Client" in str(p.body) for p in slack.posts)
    again = await worker.run_checks(now + timedelta(minutes=1))
    assert not any(a.workspace_id == ws for a in again)  # already recorded in this window
    await worker.stop()


async def test_alert_pipeline_over_both_stores(
    any_store: Store,
    db: asyncpg.Connection,
    make_workspace: WorkspaceMaker,
    make_mailbox: MailboxMaker,
    make_worker: WorkerMaker,
    slack: FakeSlack,
) -> None:
    ws = await make_workspace(name="Both Stores Client")
    mailbox = await make_mailbox(ws, email="both@client.example")
    await set_status(db, mailbox, "Failed")
    now = datetime.now(UTC)
    await set_last_delivery(db, ws, now - timedelta(hours=2))
    alerts = await evaluate_alerts(any_store, now + timedelta(seconds=1), workspace_ids=[ws])
    assert {a.condition for a in alerts} == {MAILBOX_FAILED, WEBHOOK_SILENCE}

    worker = make_worker(on=any_store)
    for alert in alerts:
        await worker.enqueue(alert)
    report = await worker.flush()
    assert report.recorded == 2 and report.sent >= 2
    [post] = mentioning(slack, "Both Stores Client")
    assert "both@client.example" in post
    for alert in alerts:
        await worker.enqueue(alert)
    assert (await worker.flush()).recorded == 0
    assert len(mentioning(slack, "Both Stores Client")) == 1
