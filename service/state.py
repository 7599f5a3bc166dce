"""What the app's handlers share (`ServiceState`, kept on `app.state.service`) and the dependencies that hand it
out: `service` (all of it), `settings`, `store`, `ingestor`, `metrics`."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from litestar.di import Provide

from bisonsync.ingest import WebhookIngestor
from bisonsync.settings import Settings
from bisonsync.store import Store
from service.metrics import ServiceMetrics


@dataclass(frozen=True)
class ServiceState:
    settings: Settings
    store: Store
    ingestor: WebhookIngestor
    metrics: ServiceMetrics


def provide_service(state: State) -> ServiceState:
    service: ServiceState = state.service
    return service


def provide_settings(state: State) -> Settings:
    return provide_service(state).settings


def provide_store(state: State) -> Store:
    return provide_service(state).store


def provide_ingestor(state: State) -> WebhookIngestor:
    return provide_service(state).ingestor


def provide_metrics(state: State) -> ServiceMetrics:
    return provide_service(state).metrics


DEPENDENCIES = {
    "service": Provide(provide_service, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "ingestor": Provide(provide_ingestor, sync_to_thread=False),
    "metrics": Provide(provide_metrics, sync_to_thread=False),
}
