"""bisonsync: keep a Supabase database in real-time step with Email Bison.

The public API is the names below (see README, "Use it as a library"); everything else is internal. Names are
imported lazily on first use, so `import bisonsync` loads neither asyncpg nor supabase-py nor any web framework:

    import bisonsync

    store = bisonsync.PostgresStore(database_url)          # or bisonsync.SupabaseStore(url, service_role_key)
    await store.open()
    ws = await bisonsync.upsert_workspace(store, "bison.example.com", 42, "Acme")
    await bisonsync.increment_metric(store, ws, "replies")
    await bisonsync.migrations.apply(database_url)           # the bundled schema, as the Supabase CLI applies it
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml reads it (`[tool.setuptools.dynamic]`).
__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # settings
    "Settings": "bisonsync.settings",
    "SettingsError": "bisonsync.settings",
    # stores: two implementations of one protocol, over the same SQL functions
    "Store": "bisonsync.store",
    "PostgresStore": "bisonsync.store",
    "SupabaseStore": "bisonsync.store",
    "store_from_settings": "bisonsync.store",
    "StoreError": "bisonsync.store",
    "StoreInvalidInput": "bisonsync.store",
    "StoreUnavailable": "bisonsync.store",
    "IngestRequest": "bisonsync.store",
    "IngestOutcome": "bisonsync.store",
    # RPC wrappers: one call, one transaction
    "ingest": "bisonsync.store.api",
    "increment_metric": "bisonsync.store.api",
    "upsert_workspace": "bisonsync.store.api",
    "record_rejected": "bisonsync.store.api",
    "record_failed": "bisonsync.store.api",
    "replay_delivery": "bisonsync.store.api",
    "METRICS": "bisonsync.store.api",
    # webhooks: decode and ingest Email Bison deliveries
    "decode_delivery": "bisonsync.events",
    "Delivery": "bisonsync.events",
    "InvalidDelivery": "bisonsync.events",
    "WebhookIngestor": "bisonsync.ingest",
    "Verdict": "bisonsync.ingest",
    # realtime: typed subscriptions to what bisonsync writes
    "Watcher": "bisonsync.realtime",
    "ChangeEvent": "bisonsync.realtime",
    "ConnectionEvent": "bisonsync.realtime",
    "decode_change": "bisonsync.realtime",
}

# subpackages reachable as attributes without an explicit import (`bisonsync.migrations.apply(...)`)
_SUBMODULES = ("events", "migrations")

# spelled out for type checkers and linters; a test keeps it equal to _EXPORTS + _SUBMODULES
__all__ = [
    "METRICS",
    "ChangeEvent",
    "ConnectionEvent",
    "Delivery",
    "IngestOutcome",
    "IngestRequest",
    "InvalidDelivery",
    "PostgresStore",
    "Settings",
    "SettingsError",
    "Store",
    "StoreError",
    "StoreInvalidInput",
    "StoreUnavailable",
    "SupabaseStore",
    "Verdict",
    "Watcher",
    "WebhookIngestor",
    "__version__",
    "decode_change",
    "decode_delivery",
    "events",
    "increment_metric",
    "ingest",
    "migrations",
    "record_failed",
    "record_rejected",
    "replay_delivery",
    "store_from_settings",
    "upsert_workspace",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # next lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; at runtime the names load on first use
    from bisonsync import events, migrations
    from bisonsync.events import Delivery, InvalidDelivery, decode_delivery
    from bisonsync.ingest import Verdict, WebhookIngestor
    from bisonsync.realtime import ChangeEvent, ConnectionEvent, Watcher, decode_change
    from bisonsync.settings import Settings, SettingsError
    from bisonsync.store import (
        IngestOutcome,
        IngestRequest,
        PostgresStore,
        Store,
        StoreError,
        StoreInvalidInput,
        StoreUnavailable,
        SupabaseStore,
        store_from_settings,
    )
    from bisonsync.store.api import (
        METRICS,
        increment_metric,
        ingest,
        record_failed,
        record_rejected,
        replay_delivery,
        upsert_workspace,
    )
