"""Fixtures for the key tests: the sync tests' simulator client, stores and unique instance."""

from tests.sync.conftest import any_store, instance, make_client, pg_store

__all__ = ["any_store", "instance", "make_client", "pg_store"]
