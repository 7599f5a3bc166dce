"""The Litestar app: the universal Email Bison webhook, its drop-in aliases, health, readiness, metrics and the
dashboard, composed by one init plugin (`service.plugin.BisonsyncPlugin`).

Thin by design: authentication, decoding and the single store call live in `bisonsync.ingest`; what the sender is
answered lives in `service.errors`.
"""

from __future__ import annotations

from litestar import Litestar

from bisonsync.settings import Settings
from bisonsync.store import Store
from service.plugin import BisonsyncPlugin, Lifespan
from service.webhooks import TOKEN_HEADER

__all__ = ["TOKEN_HEADER", "BisonsyncPlugin", "create_app"]


def create_app(
    settings: Settings | None = None, store: Store | None = None, extra_lifespans: list[Lifespan] | None = None
) -> Litestar:
    """App factory. The app opens and closes the store within its lifespan (on the loop that serves requests);
    `store` may be injected (tests pick the implementation), otherwise it is chosen from the settings.
    `extra_lifespans` replaces the default background work (poll, alerts, snapshots; off with BISONSYNC_JOBS=0)."""
    settings = settings or Settings.from_env()
    return Litestar(plugins=[BisonsyncPlugin(settings, store=store, background=extra_lifespans)])
