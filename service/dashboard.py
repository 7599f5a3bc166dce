"""The live dashboard page: the built bundle in `service/static` served at `/`, and `/config.json`, which tells the
page where Supabase is and which public key to use.

The page talks to Supabase directly (auth, PostgREST, Realtime) with the signed-in member's token, so RLS decides
what it sees; the service never proxies data to it. Source and build: `web/` (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.file_system import BaseLocalFileSystem
from litestar.static_files import create_static_files_router
from litestar.types import FileInfo, PathType

from bisonsync.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"


class StaticFileSystem(BaseLocalFileSystem):
    """The local file system, where a path that cannot name a file (a NUL byte, a name over the OS limit, a file
    used as a directory) is simply not found: Litestar answers 500 for those errors, from an unauthenticated GET."""

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        try:
            return await super().info(path, **kwargs)
        except (FileNotFoundError, PermissionError):
            raise
        except (OSError, ValueError) as exc:
            raise FileNotFoundError("no such file") from exc


def dashboard_config(settings: Settings) -> dict[str, str | None]:
    """What the page needs at run time. The anon (publishable) key is public by design; never the service key."""
    url = settings.supabase_url.rstrip("/") if settings.supabase_url else None
    return {"supabaseUrl": url, "anonKey": settings.supabase_anon_key}


def dashboard_handlers(settings: Settings, static_dir: Path = STATIC_DIR) -> list[Any]:
    """Route handlers to add to the service app: `GET /config.json` and the static page at `/`."""
    config = dashboard_config(settings)

    @get(
        "/config.json",
        operation_id="dashboardConfig",
        summary="Supabase URL and anon key for the dashboard page",
        tags=["dashboard"],
        cache_control=CacheControlHeader(no_store=True),
    )
    async def config_json() -> Response[dict[str, str | None]]:
        """`{"supabaseUrl": ..., "anonKey": ...}`, null where the service has no value (the page says so)."""
        return Response(config)

    static = create_static_files_router(
        path="/",
        directories=[static_dir],
        html_mode=True,
        name="dashboard",
        include_in_schema=False,
        file_system=StaticFileSystem(),
        # revalidate on every load (ETag / Last-Modified), so a rebuilt bundle is picked up at once
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [config_json, static]
