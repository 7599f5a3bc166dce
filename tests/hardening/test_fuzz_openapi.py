"""Schemathesis against the service's own OpenAPI document: every operation, requests generated from the
schema (valid ones and, separately, invalid ones), every response checked: never a 5xx; status code, content
type, headers and body as documented.

The app runs in-process over ASGI (schemathesis drives its lifespan on its own event loop, so the store's pool
lives on the loop that serves the requests) with a PostgresStore on a database built from the migrations alone:
fuzzed deliveries land there, never among the rows other tests count. Webhook operations are sent twice: as
generated (token or not), and again with the valid token, so generated bodies also reach the decoder and the
database instead of stopping at the 401.

Schemathesis' own pytest loader (`from_fixture`) does not run under pytest 9, so the operations are listed from
the app's schema at import time and each is driven through hypothesis with `operation.as_strategy()`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.serialization import encode_json
from schemathesis import GenerationMode
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.python import asgi as schemathesis_asgi

from bisonsync.events import instance_host
from bisonsync.settings import Settings
from bisonsync.store import PostgresStore
from service.app import TOKEN_HEADER, create_app
from service.webhook_docs import LEGACY_BODY, UNIVERSAL_BODY

TOKEN = "fuzz-" + uuid.uuid4().hex
#: hypothesis examples per operation and generation mode (the module stays well under a minute); setting
#: BISONSYNC_FUZZ_EXAMPLES raises it and lets hypothesis explore instead of replaying the same examples
EXPLORE = os.environ.get("BISONSYNC_FUZZ_EXAMPLES")
MAX_EXAMPLES = int(EXPLORE) if EXPLORE else 100
LEGACY_PATH = "/functions/v1/bison-interested-webhook"
WEBHOOK_PATHS = ("/webhooks/bison", "/functions/v1/universal-bison-webhook", "/functions/v1/bison-interested-webhook")

pytestmark = pytest.mark.timeout(180)


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "webhook_token": TOKEN,
        "webhook_max_bytes": 64 * 1024,
        "default_instance": f"fuzz-{uuid.uuid4().hex[:8]}",
    }
    base.update(overrides)
    return Settings(**base)


def _unstarted_app() -> Litestar:
    return create_app(_settings(), store=PostgresStore("postgresql://unused@127.0.0.1:1/unused"), extra_lifespans=[])


def _documented_operations() -> list[tuple[str, str, bool]]:
    """(method, path, takes input) of every operation the schema documents (the app is built, never started)."""
    document = json.loads(encode_json(_unstarted_app().openapi_schema.to_schema()))
    return sorted(
        (method.upper(), path, bool(op.get("parameters") or op.get("requestBody")))
        for path, item in document["paths"].items()
        for method, op in item.items()
    )


OPERATIONS = _documented_operations()
#: (method, path, generation mode): negative cases only for operations that take some input to get wrong
CASES = [(m, p, GenerationMode.POSITIVE) for m, p, _ in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p, takes_input in OPERATIONS if takes_input
]


@pytest.fixture(scope="module")
def api_schema(migrated_database: str) -> Iterator[Any]:
    # no background jobs: this is about the HTTP surface
    app = create_app(_settings(), store=PostgresStore(migrated_database, max_size=4), extra_lifespans=[])
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    schemathesis_asgi.shutdown_lifespans()  # closes the store's pool before the database is dropped


#: routes deliberately left out of the document: the OpenAPI pages themselves and the dashboard's static files
UNDOCUMENTED = ("/schema", "/", "/{file_path:path}")


def test_every_route_is_documented() -> None:
    routes = {r.path for r in _unstarted_app().routes}
    undocumented = {r for r in routes if r.startswith("/schema/") or r in UNDOCUMENTED}
    assert {p for _, p, _ in OPERATIONS} == routes - undocumented
    assert {p for _, p, _ in OPERATIONS} >= {*WEBHOOK_PATHS, "/healthz", "/readyz", "/metrics"}


STATIC_DIR = Path(__file__).resolve().parents[2] / "service" / "static"
#: pieces of files outside service/static that a traversal would serve
OUTSIDE = (b"[project]", b"root:x:0:0", b"def create_app", b"BISONSYNC_WEBHOOK_TOKEN")


async def _raw_get(app: Litestar, raw_path: str) -> tuple[int, bytes]:
    """GET with the path exactly as given (no client-side normalisation of `..`), straight into the ASGI app."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 9),
        "server": ("testserver", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


TRAVERSALS = st.lists(
    st.sampled_from(
        [
            "..",
            "%2e%2e",
            "%2E%2E",
            ".%2e",
            "..%2f..",
            "...",
            ".",
            "%252e%252e",
            "static",
            "index.html",
            "etc",
            "passwd",
            "pyproject.toml",
            "service",
            "app.py",
            "%00",
            "\\..",
            "//",
            "~",
        ]
    ),
    min_size=1,
    max_size=8,
)


def test_static_files_never_fail_and_never_leave_their_directory() -> None:
    """The undocumented dashboard routes (`/` and `/{file_path:path}`): any path, traversal spellings included,
    answers without a 5xx and serves nothing from outside service/static."""
    app = _unstarted_app()
    runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)

    @settings(max_examples=MAX_EXAMPLES * 3, deadline=None, derandomize=not EXPLORE, database=None)
    @given(parts=TRAVERSALS, slash=st.sampled_from(["/", "%2f", "%5c"]))
    def run(parts: list[str], slash: str) -> None:
        status, body = runner.run(_raw_get(app, "/" + slash.join(parts)))
        assert status < 500, (parts, status, body[:200])
        assert not any(piece in body for piece in OUTSIDE), (parts, status, body[:200])

    try:
        run()
    finally:
        runner.close()
    assert runner  # the index page is served, so the route under test is the live one
    status, body = asyncio.run(_raw_get(app, "/"))
    assert status == 200 and body == (STATIC_DIR / "index.html").read_bytes()


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_operation_conforms_to_its_openapi(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _call_and_check(case)
        if path in WEBHOOK_PATHS:
            _call_and_check(case, params={"token": TOKEN}, headers={TOKEN_HEADER: TOKEN})

    run()


def _call_and_check(case: Any, **kwargs: Any) -> None:
    """One request, never a 5xx, and every schemathesis check on its response."""
    response = case.call(**kwargs)
    assert response.status_code < 500, f"{response.status_code} {response.text}"
    try:
        case.validate_response(response, headers=kwargs.get("headers"))
    except FailureGroup as failures:
        if not (all(isinstance(f, AcceptedNegativeData) for f in failures.exceptions) and _idna_host_only(case)):
            raise


def _idna_host_only(case: Any) -> bool:
    """Whether the body breaks the documented schema only by an international `instance_url` ("Ô", "bücher.de"):
    the decoder accepts those (IDNA), the documented pattern describes ASCII hosts only, since no JSON Schema
    pattern can say which Unicode strings IDNA accepts."""
    body = case.body
    event = body.get("event") if isinstance(body, dict) else None
    url = event.get("instance_url") if isinstance(event, dict) else None
    if not isinstance(url, str) or url.isascii():
        return False
    try:
        instance_host(url)
    except ValueError:
        return False
    ascii_body = copy.deepcopy(body)
    ascii_body["event"]["instance_url"] = "bison.example.com"
    documented = LEGACY_BODY if case.path == LEGACY_PATH else UNIVERSAL_BODY
    return bool(jsonschema_rs.validator_for(documented.to_schema()).is_valid(ascii_body))
