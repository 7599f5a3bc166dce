"""`BisonsyncPlugin`: the one place the service is composed. Litestar calls it while building the app; it adds the
routes, the dependencies handlers ask for (`service.state`), the lifespans (the store,
then the background jobs), the exception handlers (`service.errors`), OpenAPI, CORS, the access log and the webhook
body limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins import InitPlugin

import bisonsync
from bisonsync.ingest import WebhookIngestor
from bisonsync.settings import Settings
from bisonsync.store import Store, StoreError, store_from_settings
from service.access_log import access_log
from service.background import background_lifespans
from service.dashboard import dashboard_handlers
from service.errors import EXCEPTION_HANDLERS
from service.metrics import ServiceMetrics
from service.ops import OpsController
from service.state import DEPENDENCIES, ServiceState
from service.webhooks import TOKEN_HEADER, WebhookController

Lifespan = Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]

# The predecessor's CORS headers (Supabase Edge Functions), plus our token header.
CORS = CORSConfig(
    allow_origins=["*"],
    allow_methods=["GET", "POST", "OPTIONS"],
    allow_headers=["authorization", "x-client-info", "apikey", "content-type", TOKEN_HEADER],
)


class BisonsyncPlugin(InitPlugin):
    """The service, as a Litestar init plugin.

    `store`: the store to serve (tests pick the implementation); default: chosen from the settings. The app opens
    it in its first lifespan (on the loop that serves requests) and closes it last. `background`: lifespans to run
    after the store's; default: the background jobs (`service.background`), none with BISONSYNC_JOBS=0."""

    __slots__ = ("background", "service")

    def __init__(
        self, settings: Settings, *, store: Store | None = None, background: list[Lifespan] | None = None
    ) -> None:
        the_store = store or store_from_settings(settings)
        self.service = ServiceState(
            settings=settings,
            store=the_store,
            ingestor=WebhookIngestor(
                the_store,
                global_token=settings.webhook_token,
                instance=settings.webhook_instance(),
                instances=settings.webhook_instances,
                legacy_instance=settings.default_instance,
            ),
            metrics=ServiceMetrics(),
        )
        if background is None:
            background = background_lifespans(settings, the_store) if settings.jobs_enabled else []
        self.background = background

    @contextlib.asynccontextmanager
    async def store_lifespan(self, app: Litestar) -> AsyncIterator[None]:
        store = self.service.store
        with contextlib.suppress(StoreError):  # readiness reports it; webhooks answer 503 until it's back
            await store.open()
        try:
            yield
        finally:
            await store.close()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.service.settings
        app_config.state["service"] = self.service
        # the body limit on the webhook routes (Litestar takes the app-wide one from its constructor only)
        webhooks = Router("/", route_handlers=[WebhookController], request_max_body_size=settings.webhook_max_bytes)
        app_config.route_handlers.extend([webhooks, OpsController, *dashboard_handlers(settings)])
        app_config.dependencies.update(DEPENDENCIES)
        app_config.lifespan.extend([self.store_lifespan, *self.background])
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)
        app_config.openapi_config = OpenAPIConfig(title="bisonsync", version=bisonsync.__version__, path="/schema")
        app_config.cors_config = CORS
        app_config.middleware.append(access_log)
        app_config.logging_config = None  # the process configures logging (bisonsync.logs), with secret redaction
        return app_config
