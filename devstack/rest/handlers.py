"""The Litestar side: routes under `/rest/v1`, one transaction per request, errors rendered PostgREST's way."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import asyncpg
from litestar import Request, Response, Router, get, route
from litestar.enums import HttpMethod

from devstack.auth import http_bearer
from devstack.rest import openapi
from devstack.rest.catalog import Conn, SchemaCache, StaleSchema
from devstack.rest.config import RestSettings
from devstack.rest.errors import RestError, connection_error, from_postgres
from devstack.rest.negotiate import parse_accept, parse_prefer, pick_schema
from devstack.rest.plans import Outcome, Plan, RestRequest, plan_relation, plan_rpc
from devstack.rest.session import Identity, RequestInfo, apply_request_settings, authenticate

if TYPE_CHECKING:
    from devstack.gateway import GatewayState

log = logging.getLogger("devstack.rest")

_METHODS = [HttpMethod.GET, HttpMethod.HEAD, HttpMethod.POST, HttpMethod.PATCH, HttpMethod.DELETE, HttpMethod.PUT]
_MAX_BODY = 100 * 1024 * 1024

Planner = Callable[[RestRequest, Conn, SchemaCache], Awaitable[Plan]]


class _Rollback(Exception):
    """`Prefer: tx=rollback`: leave the transaction without committing, then answer normally."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _gateway(request: Request[Any, Any, Any]) -> GatewayState:
    return cast("GatewayState", request.app.state.gateway)


def _settings(gateway: GatewayState) -> RestSettings:
    return gateway.config.rest


def _headers(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.scope["headers"]]


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def _render(outcome: Outcome) -> Response[bytes]:
    media_type = outcome.headers.pop("Content-Type", None)
    return Response(
        content=outcome.body, status_code=outcome.status, headers=outcome.headers, media_type=media_type or ""
    )


def _error(err: RestError, head: bool = False) -> Response[bytes]:
    return Response(
        content=b"" if head else err.body(),
        status_code=err.status,
        headers=err.response_headers(),
        media_type="application/json; charset=utf-8",
    )


async def _serve(request: Request[Any, Any, Any], path: str, planner: Planner) -> Response[bytes]:
    method = request.method.upper()
    identity: Identity | None = None
    try:
        gateway = _gateway(request)
        settings = _settings(gateway)
        headers = _headers(request)
        header_map = dict(headers)
        identity = authenticate(header_map, gateway.config.keys, settings.anon_role)
        schema = pick_schema(
            method, header_map.get("accept-profile"), header_map.get("content-profile"), settings.schemas
        )
        prefs = parse_prefer([v for k, v in headers if k == "prefer"])
        req = RestRequest(
            method=method,
            schema=schema,
            pairs=parse_qsl(request.scope["query_string"].decode(), keep_blank_values=True, errors="replace"),
            body=await request.body() if method not in ("GET", "HEAD") else b"",
            prefs=prefs,
            accept=parse_accept(_first(headers, "accept")),
            content_type=header_map.get("content-type"),
            range_header=header_map.get("range"),
            settings=settings,
        )
        info = RequestInfo(method=method, path=path, headers=headers, timezone=prefs.timezone)
        outcome = await _execute(gateway, req, identity, info, planner)
        if len(settings.schemas) > 1 and outcome.status != 204:
            outcome.headers.setdefault("Content-Profile", schema)
        return _render(outcome)
    except RestError as err:
        return _error(err, method == "HEAD")
    except asyncpg.PostgresError as exc:
        return _error(from_postgres(exc, authenticated=bool(identity and identity.authenticated)), method == "HEAD")
    except (OSError, asyncpg.InterfaceError) as exc:  # the database went away: transient, PGRST000
        return _error(connection_error(str(exc)), method == "HEAD")
    except Exception as exc:  # a bug in the emulator: say so, in PostgREST's shape
        log.exception("unexpected error serving %s %s", method, path)
        return _error(RestError(500, "PGRSTX00", f"devstack REST emulator error: {exc!r}"), method == "HEAD")


async def _execute(
    gateway: GatewayState, req: RestRequest, identity: Identity, info: RequestInfo, planner: Planner
) -> Outcome:
    cache = gateway.schema_cache
    async with gateway.pool.acquire() as conn:
        for attempt in (1, 2):
            hits = cache.hits
            try:
                plan = await planner(req, conn, cache)
                return await _run(conn, cache, plan, req, identity, info)
            except RestError as err:  # e.g. a column added since the table was cached
                if not (err.schema_miss and attempt == 1 and cache.hits > hits):
                    raise
            except StaleSchema:
                if attempt == 2:  # the schema keeps changing under us (a migration is running): try again later
                    raise RestError(
                        503, "PGRST002", "Could not query the database for the schema cache. Retrying."
                    ) from None
            cache.clear()  # a stale entry was used: look everything up again and plan once more
    raise AssertionError("unreachable")


async def _run(
    conn: Conn, cache: SchemaCache, plan: Plan, req: RestRequest, identity: Identity, info: RequestInfo
) -> Outcome:
    try:
        async with conn.transaction(isolation="read_committed", readonly=plan.readonly):
            await apply_request_settings(conn, cache, req.settings, identity, req.schema, info, plan.checks)
            outcome = await plan.run(conn)
            if req.prefs.tx == "rollback":
                raise _Rollback(outcome)
            return outcome
    except _Rollback as rb:
        return rb.outcome


# -- routes -----------------------------------------------------------------------------------------------------
@route("/{relation:str}", http_method=_METHODS, operation_id="postgrestRelation", include_in_schema=False)
async def relation_endpoint(request: Request[Any, Any, Any], relation: str) -> Response[bytes]:
    """Read, insert/upsert, update or delete rows of a table or view."""

    async def planner(req: RestRequest, conn: Conn, cache: SchemaCache) -> Plan:
        return await plan_relation(req, conn, cache, relation)

    return await _serve(request, f"/{relation}", planner)


@route("/rpc/{function:str}", http_method=_METHODS, operation_id="postgrestRpc", include_in_schema=False)
async def rpc_endpoint(request: Request[Any, Any, Any], function: str) -> Response[bytes]:
    """Call a function with named arguments (POST body keys or GET query parameters)."""

    async def planner(req: RestRequest, conn: Conn, cache: SchemaCache) -> Plan:
        return await plan_rpc(req, conn, cache, function)

    return await _serve(request, f"/rpc/{function}", planner)


@get("/", operation_id="postgrestRoot", include_in_schema=False)
async def root_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """An OpenAPI-ish description of the exposed schema (PostgREST serves full OpenAPI 2.0 here)."""
    try:
        gateway = _gateway(request)
        settings = _settings(gateway)
        headers = dict(_headers(request))
        if http_bearer(headers, gateway.config.keys) is None:  # Kong's key check: the description needs a key
            raise RestError(401, "PGRST302", "No API key found in request", hint="Send the apikey header.")
        identity = authenticate(headers, gateway.config.keys, settings.anon_role)
        schema = pick_schema("GET", headers.get("accept-profile"), None, settings.schemas)
        async with gateway.pool.acquire() as conn:
            body = await openapi.describe(conn, schema, host=headers.get("host", ""), role=identity.role)
        return Response(content=body, status_code=200, media_type="application/openapi+json; charset=utf-8")
    except RestError as err:
        return _error(err)
    except asyncpg.PostgresError as exc:
        return _error(from_postgres(exc, authenticated=False))


def build_router() -> Router:
    return Router(
        path="/rest/v1",
        route_handlers=[root_endpoint, rpc_endpoint, relation_endpoint],
        request_max_body_size=_MAX_BODY,
    )
