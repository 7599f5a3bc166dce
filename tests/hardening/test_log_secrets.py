"""Secrets never reach the logs: the real `bisonsync serve` process, real-looking secrets in its environment, a
run that exercises every route, wrong tokens, a hostile upstream, and stores that fail; then every line it wrote.

Three service processes run side by side at `--log-level debug` with their background jobs on:

- `ok`: PostgresStore through a dedicated database role whose password is a secret; an Email Bison base URL that
  answers every call with a 500 echoing the request's Authorization header back (so a client that logs response
  bodies would leak the API key); a Slack URL with a secret path; the anon and service keys set.
- `pg-down`: a DATABASE_URL with a secret password pointing at a closed port (every webhook is a 503).
- `rest-down`: SUPABASE_URL at a closed port with the real service_role key (the supabase-py store failing).

Webhooks carry tokens in the query and in the header: the global token, a per-workspace token, real-looking
wrong tokens, tokens where the service does not look for them (Authorization, apikey, the path), with valid,
malformed and oversized bodies. The test asserts that no secret, nor its URL-encoded form, appears in what the
processes printed, and that they did log (access lines, the store failures, the failing poll).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from bisonsync.settings import SETTINGS, Settings
from devstack.cluster import SUPERUSER
from devstack.ports import free_port
from tests.conftest import StackHandle

pytestmark = pytest.mark.timeout(120)
BISONSYNC = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv")) / "bin" / "bisonsync"


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(30)


@dataclass
class Secrets:
    global_token: str = field(default_factory=lambda: _token("bsw_"))
    workspace_token: str = field(default_factory=lambda: _token("bsw_ws_"))
    wrong_tokens: list[str] = field(default_factory=lambda: [_token("bsw_"), _token("x"), secrets.token_hex(32)])
    bison_key: str = field(default_factory=lambda: f"{secrets.randbelow(999) + 1}|" + secrets.token_hex(20))
    slack_secret: str = field(default_factory=lambda: secrets.token_hex(12))
    db_password: str = field(default_factory=lambda: "pg_" + secrets.token_hex(16))
    service_key: str = ""
    anon_key: str = ""

    def values(self) -> dict[str, str]:
        found = {
            "global token": self.global_token,
            "workspace token": self.workspace_token,
            "Email Bison key": self.bison_key,
            "Slack path": self.slack_secret,
            "database password": self.db_password,
            "service_role key": self.service_key,
            "anon key": self.anon_key,
        }
        found.update({f"wrong token {i}": t for i, t in enumerate(self.wrong_tokens)})
        return {k: v for k, v in found.items() if v}


class _EchoHandler(BaseHTTPRequestHandler):
    """A hostile upstream: 500 for everything, with the credentials it was sent in the body."""

    def _answer(self) -> None:
        body = json.dumps(
            {"message": f"invalid credentials {self.headers.get('Authorization')}", "path": self.path}
        ).encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:  # the test's own server stays quiet
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[str]
    output: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _start(name: str, env: dict[str, str]) -> Service:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BISON", "SUPABASE", "DATABASE", "SLACK"))}
    process = subprocess.Popen(
        [str(BISONSYNC), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "debug"],
        env={**base, "BISONSYNC_WEBHOOK_MAX_BYTES": "4096", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return Service(name, port, process)


def _wait_healthy(service: Service, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"{service.name} exited: {service.process.communicate()[0]}")
        try:
            if httpx.get(f"{service.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{service.name} not healthy after {timeout}s")


def _stop(service: Service) -> None:
    """SIGINT (uvicorn's graceful shutdown) to the process we started, by its pid; kill if it hangs."""
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGINT)
    try:
        service.output, _ = service.process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.output, _ = service.process.communicate()


async def _database_role(devstack: StackHandle, password: str) -> tuple[str, str]:
    """A login role that acts as `postgres` (member of it) with `password`; returns (dsn, role)."""
    assert devstack.stack is not None
    role = f"hardening_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(devstack.stack.cluster.dsn(SUPERUSER))
    try:
        await admin.execute(f"create role {role} login password '{password}' in role postgres")
    finally:
        await admin.close()
    cluster = devstack.stack.cluster
    return f"postgresql://{role}:{password}@{cluster.host}:{cluster.port}/postgres", role


async def _drop_role(devstack: StackHandle, role: str) -> None:
    assert devstack.stack is not None
    admin = await asyncpg.connect(devstack.stack.cluster.dsn(SUPERUSER))
    try:
        await admin.execute(f"drop role if exists {role}")
    finally:
        await admin.close()


def _envelope(instance: str, bison_ws: int, event_type: str = "email_sent", **data: object) -> bytes:
    return json.dumps(
        {
            "event": {
                "type": event_type,
                "workspace_id": bison_ws,
                "instance_url": f"https://{instance}",
                "workspace_name": "Log Test",
            },
            "data": data,
        }
    ).encode()


def _exercise(service: Service, s: Secrets, instance: str, bison_ws: int) -> list[int]:
    """Every kind of request, tokens everywhere; returns the statuses (checked loosely: the point is the log)."""
    statuses: list[int] = []
    hook = f"{service.url}/webhooks/bison"
    with httpx.Client(timeout=10) as http:

        def post(url: str, body: bytes, **kw: Any) -> None:
            headers = {"content-type": "application/json", **kw.pop("headers", {})}
            statuses.append(http.post(url, content=body, headers=headers, **kw).status_code)

        post(hook, _envelope(instance, bison_ws, n=1), params={"token": s.global_token})
        post(hook, _envelope(instance, bison_ws, n=1), headers={"x-bisonsync-token": s.global_token})
        post(hook, _envelope(instance, bison_ws, n=2), params={"token": s.workspace_token})
        post(hook, _envelope(instance, bison_ws + 1, n=3), headers={"x-bisonsync-token": s.workspace_token})
        for wrong in s.wrong_tokens:
            post(hook, _envelope(instance, bison_ws, n=4), params={"token": wrong})
            post(hook, _envelope(instance, bison_ws, n=5), headers={"x-bisonsync-token": wrong})
        post(hook, b'{"event": {"type": 1}}', params={"token": s.global_token})
        post(hook, b"not json " + s.global_token.encode(), params={"token": s.wrong_tokens[0]})
        post(hook, b"x" * 10_000, params={"token": s.global_token})  # 413
        post(
            f"{service.url}/functions/v1/bison-interested-webhook",
            _envelope(instance, bison_ws),
            params={"token": s.global_token},
        )
        post(
            f"{service.url}/functions/v1/universal-bison-webhook",
            _envelope(instance, bison_ws, "lead_replied", lead={"email": "log@example.com"}, reply={"uuid": "r1"}),
            params={"token": s.global_token},
        )
        # tokens where the service does not read them: a confused sender
        post(
            hook,
            _envelope(instance, bison_ws),
            headers={"authorization": f"Bearer {s.global_token}", "apikey": s.service_key or s.global_token},
        )
        post(f"{hook}/{s.global_token}", _envelope(instance, bison_ws), params={"token": s.global_token})
        post(f"{service.url}/webhooks/{quote(s.global_token)}", b"{}")
        for path in (
            "/readyz",
            "/metrics",
            "/config.json",
            "/healthz",
            "/nope",
            "/webhooks/bison",
            "/schema/openapi.json",
        ):
            statuses.append(
                http.get(
                    f"{service.url}{path}",
                    params={"token": s.global_token},
                    headers={"authorization": f"Bearer {s.service_key}"},
                ).status_code
            )
    return statuses


def _leaks(output: str, values: dict[str, str]) -> list[str]:
    found = []
    for name, value in values.items():
        for spelling in {value, quote(value, safe=""), json.dumps(value)[1:-1]}:
            if spelling in output:
                found.append(f"{name} ({spelling[:6]}...)")
    return found


async def _workspace_with_token(devstack: StackHandle, instance: str, bison_ws: int, token: str) -> None:
    db = await asyncpg.connect(devstack.env.database_url)
    try:
        ws = await db.fetchval("select public.upsert_workspace($1, $2, 'Log Test')", instance, bison_ws)
        await db.execute("select public.set_webhook_token($1, $2)", ws, hashlib.sha256(token.encode()).hexdigest())
    finally:
        await db.close()


async def test_no_secret_reaches_the_logs(devstack: StackHandle, echo_server: str) -> None:
    s = Secrets(service_key=devstack.env.service_role_key, anon_key=devstack.env.anon_key)
    instance = f"logs-{uuid.uuid4().hex[:8]}.bison.local"
    bison_ws = 100_000 + uuid.uuid4().int % 1_000_000_000
    await _workspace_with_token(devstack, instance, bison_ws, s.workspace_token)
    role = None
    if devstack.stack is not None:
        dsn, role = await _database_role(devstack, s.db_password)
    else:  # an external stack: its password is whatever it is, and is not checked
        dsn, s.db_password = devstack.env.database_url, ""
    closed = free_port()
    common = {
        "BISONSYNC_WEBHOOK_TOKEN": s.global_token,
        "SUPABASE_ANON_KEY": s.anon_key,
        "BISON_BASE_URL": echo_server,
        "BISON_API_KEY": s.bison_key,
        "BISON_INSTANCE": instance,
        "BISONSYNC_POLL_INTERVAL_S": "1",
        "SLACK_WEBHOOK_URL": f"{echo_server}/services/T000/B000/{s.slack_secret}",
    }
    services = [
        _start(
            "ok",
            {
                **common,
                "DATABASE_URL": dsn,
                "SUPABASE_URL": devstack.env.supabase_url,
                "SUPABASE_SERVICE_ROLE_KEY": s.service_key,
            },
        ),
        _start("pg-down", {**common, "DATABASE_URL": f"postgresql://bisonsync:{s.db_password}@127.0.0.1:{closed}/db"}),
        _start(
            "rest-down",
            {**common, "SUPABASE_URL": f"http://127.0.0.1:{closed}", "SUPABASE_SERVICE_ROLE_KEY": s.service_key},
        ),
    ]
    try:
        statuses = {}
        for service in services:  # blocking HTTP and process calls run in a thread, off the event loop
            await asyncio.to_thread(_wait_healthy, service)
            statuses[service.name] = await asyncio.to_thread(_exercise, service, s, instance, bison_ws)
        await asyncio.sleep(2.5)  # the mailbox poll (every second) meets the hostile upstream
    finally:
        for service in services:
            await asyncio.to_thread(_stop, service)
        if role is not None:
            await _drop_role(devstack, role)

    assert 200 in statuses["ok"] and 401 in statuses["ok"] and 400 in statuses["ok"], statuses
    assert 503 in statuses["pg-down"] and 503 in statuses["rest-down"], statuses
    problems = {svc.name: _leaks(svc.output, s.values()) for svc in services}
    assert not any(problems.values()), f"secrets in the logs: {problems}"
    ok, pg_down, rest_down = (svc.output for svc in services)
    assert "POST /webhooks/bison 200" in ok and "POST /webhooks/bison 401" in ok, ok[-3000:]
    assert "store unavailable" in pg_down and "store unavailable" in rest_down, (pg_down[-2000:], rest_down[-2000:])
    assert "email bison GET" in ok and "failed" in ok, ok[-3000:]  # the poll met the hostile upstream


def test_settings_repr_holds_no_secret() -> None:
    """A Settings that reaches a log line or an error report (locals, repr) must not carry a secret."""
    env = {spec.env: f"secret-{spec.env.lower()}-{secrets.token_hex(8)}" for spec in SETTINGS if spec.secret}
    env["BISON_API_KEY"] = "7|" + secrets.token_hex(20)
    settings = Settings.from_env({**env, "BISONSYNC_PORT": "8000"})
    text = repr(settings) + str(settings)
    assert not [name for name, value in env.items() if value in text], text
