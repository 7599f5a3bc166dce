"""The devstack's HTTP gateway: what Kong + PostgREST + Realtime serve on 54321 under `supabase start`.

`/rest/v1/...` is the PostgREST subset (package `devstack.rest`), `/realtime/v1/websocket` the Realtime
subset (package `devstack.realtime`). Both share one asyncpg pool logged in as `authenticator`, as PostgREST is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from litestar import Litestar, get
from litestar.config.cors import CORSConfig

from devstack.gotrue import build_auth_router
from devstack.keys import StackKeys
from devstack.realtime import RealtimeHub, build_realtime_router
from devstack.rest import RestSettings, SchemaCache, build_rest_router


@dataclass
class GatewayConfig:
    #: the pool PostgREST uses: login as `authenticator`, then `set local role` per request
    db_url: str
    #: a role with REPLICATION for the logical slot the realtime emulator reads (`postgres` on Supabase-like DBs)
    replication_db_url: str
    keys: StackKeys = field(default_factory=StackKeys.defaults)
    rest: RestSettings = field(default_factory=RestSettings.from_config)
    pool_min: int = 2
    pool_max: int = 20


@dataclass
class GatewayState:
    config: GatewayConfig
    pool: asyncpg.Pool
    realtime: RealtimeHub
    #: the REST emulator's catalog cache (per pool, like PostgREST's schema cache)
    schema_cache: SchemaCache = field(default_factory=SchemaCache)


# Kong's `cors` plugin on `supabase start`: browsers on any origin may call the API (the dashboard page does).
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["*"],
    allow_headers=["*"],
    expose_headers=["Content-Range", "Content-Profile", "Preference-Applied", "Location", "X-Supabase-Api-Version"],
    max_age=3600,
)


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(config: GatewayConfig) -> Litestar:
    hub = RealtimeHub(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(config.db_url, min_size=config.pool_min, max_size=config.pool_max)
        app.state.gateway = GatewayState(config=config, pool=pool, realtime=hub)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    return Litestar(
        route_handlers=[health, build_rest_router(), build_realtime_router(), build_auth_router()],
        lifespan=[lifespan],
        cors_config=CORS,
        openapi_config=None,
        debug=False,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m devstack.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54321)
    parser.add_argument("--db-url", default=os.environ.get("DEVSTACK_AUTHENTICATOR_URL", ""))
    parser.add_argument("--replication-db-url", default=os.environ.get("DEVSTACK_REPLICATION_URL", ""))
    args = parser.parse_args(argv)
    if not args.db_url or not args.replication_db_url:
        parser.error("--db-url and --replication-db-url are required")
    jwt_secret = os.environ.get("SUPABASE_JWT_SECRET")
    keys = StackKeys.defaults(jwt_secret) if jwt_secret else StackKeys.defaults()
    app = create_app(GatewayConfig(db_url=args.db_url, replication_db_url=args.replication_db_url, keys=keys))
    # No permessage-deflate: Realtime's Phoenix endpoint does not compress, and it costs CPU on every frame.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="websockets",
        ws_per_message_deflate=False,
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
