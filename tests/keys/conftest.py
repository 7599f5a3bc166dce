"""The key tests' fixtures live in tests/simulated.py (shared with the sync tests)."""

from tests.simulated import any_store, instance, make_client, pg_store

__all__ = ["any_store", "instance", "make_client", "pg_store"]
