"""A Slack error response that echoes the webhook URL or path (issue 12 item 7).

Before: a 404 whose body quoted the path (`/services/T…/B…/secret`) put the secret path in the log and in
`alert_log.last_error`, which the workspace's members can read. Now every part of the URL is removed from every
error text, wherever and however it appears, and `last_error` holds only the class of the failure.

A real HTTP server on 127.0.0.1 plays Slack (no mock transport): it answers 404 with the URL echoed in a given form.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from bisonsync.alerts import AlertConfig, AlertWorker, post_message, url_label
from bisonsync.alerts.log import record_alerts
from bisonsync.alerts.models import Alert
from bisonsync.logs import redact
from bisonsync.retry import RetryPolicy
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore
from bisonsync.store import api as store_api

TEAM, CHANNEL, SECRET = "T0HARDEN01", "B0HARDEN02", "zq9SecretToken4HardeningX"
PATH = f"/services/{TEAM}/{CHANNEL}/{SECRET}"
PARTS = (TEAM, CHANNEL, SECRET, PATH)

Echo = Callable[[str], str]
ECHOES: dict[str, Echo] = {
    "path": lambda url: f"no_service: {PATH}",
    "url": lambda url: f"invalid webhook {url}",
    "json-escaped": lambda url: json.dumps({"error": "no_service", "path": PATH}).replace("/", "\\/"),
    "percent-encoded": lambda url: f"not found: {quote(PATH, safe='')}",
    "segments": lambda url: f"team {TEAM} has no channel {CHANNEL} for token {SECRET.lower()}",
    "long-prefix": lambda url: "x" * 190 + PATH,  # a secret cut in two by the 200-character limit
}


class EchoSlack:
    """`POST <path>` -> `status` (404) with a body from `echo(url)`; a real listener on a free port."""

    def __init__(self) -> None:
        self.echo: Echo = ECHOES["path"]
        self.status = 404
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{PATH}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
        )
        await reader.readexactly(length)
        body = self.echo(self.url).encode()
        writer.write(
            f"HTTP/1.1 {self.status} Nope\r\n".encode()
            + b"content-type: text/plain\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def echo_slack() -> AsyncIterator[EchoSlack]:
    slack = EchoSlack()
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [p for p in PARTS if p.lower() in low or quote(p, safe="").lower() in low]


@pytest.mark.parametrize("form", sorted(ECHOES))
async def test_no_part_of_the_url_reaches_the_error_or_the_log(
    echo_slack: EchoSlack, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    echo_slack.echo = ECHOES[form]
    echo_slack.status = 503  # retried: the error text is logged between the tries
    async with httpx.AsyncClient() as http:
        with caplog.at_level(logging.DEBUG):
            policy = RetryPolicy(max_attempts=2, backoff_base_s=0.01)
            result = await post_message(http, echo_slack.url, {"text": "hi"}, policy=policy)
    assert not result.ok and result.status == 503 and result.kind == "HTTP 503"
    assert result.error is not None and result.error.startswith("HTTP 503")
    assert _leaks(result.error) == [], result.error
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bisonsync"))
    assert "HTTP 503" in ours and _leaks(ours) == [], ours
    # third-party lines (httpx logs request URLs at INFO) pass the handler's redacting filter in `setup_logging`
    assert _leaks(redact(caplog.text)) == []
    assert url_label(echo_slack.url) not in (TEAM, CHANNEL, SECRET) and SECRET[-4:] not in url_label(echo_slack.url)


async def test_transport_errors_name_no_part_of_the_url() -> None:
    url = f"http://127.0.0.1:1{PATH}"  # nothing listens on port 1
    async with httpx.AsyncClient() as http:
        result = await post_message(http, url, {"text": "hi"}, policy=RetryPolicy(max_attempts=1))
    assert not result.ok and result.kind is not None and result.kind.startswith("transport error")
    assert _leaks(f"{result.error} {result.kind}") == []


def test_the_log_filter_redacts_an_echoed_slack_path_without_its_host() -> None:
    for text in (f"x {PATH} y", PATH.replace("/", "\\/"), quote(PATH, safe="")):
        assert SECRET not in redact(text), text


async def test_members_read_only_the_class_of_a_failure(
    echo_slack: EchoSlack, database_url: str, db: asyncpg.Connection, unique_ws: int
) -> None:
    """The worker's outcome lands in alert_log.last_error (readable by the workspace's members): the class only."""
    echo_slack.echo = ECHOES["segments"]
    store = PostgresStore(database_url, max_size=2)
    await store.open()
    http = httpx.AsyncClient()
    try:
        ws = await store_api.upsert_workspace(store, "redaction.bison.test", unique_ws, f"Client {unique_ws}", "UTC")
        key = f"hardening-redaction-{unique_ws}"
        alert = Alert(
            key=key,
            condition="webhook_silence",
            severity="warning",
            window_start=datetime.now(UTC),
            title="silent",
            workspace_id=ws,
        )
        assert await record_alerts(store, [alert]) == [key]
        config = AlertConfig(batch_delay_s=0.01, retry_interval_s=0.01, send_backoff_s=0.001, send_attempts=1)
        worker = AlertWorker(store, Settings(slack_webhook_url=echo_slack.url), http, config=config, environ={})
        report = await worker.flush()
        await worker.stop()
        assert report.failed >= 1
        row = await db.fetchrow(
            "select last_error, payload::text as payload from public.alert_log where alert_key = $1", key
        )
        assert row is not None and row["last_error"] == "slack: HTTP 404"
        assert _leaks(str(dict(row))) == [] and _leaks(" ".join(report.errors)) == []
    finally:
        await http.aclose()
        await store.close()
