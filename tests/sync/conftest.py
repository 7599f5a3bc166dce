"""The sync tests' fixtures live in tests/simulated.py (the key tests use them too)."""

from tests.simulated import any_store, instance, make_client, pg_store

__all__ = ["any_store", "instance", "make_client", "pg_store"]
