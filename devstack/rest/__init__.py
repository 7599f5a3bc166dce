"""PostgREST subset served under `/rest/v1`, the way supabase-py's postgrest client uses it.

Modules: `query` parses the query string, `negotiate` the headers, `catalog` caches the schema, `sql` builds
statements, `plans` turns a request into statements and their result into a response, `session` authenticates
and sets the per-transaction role and settings, `errors` holds PostgREST's error shapes, `handlers` the routes.
See docs/devstack.md for what is supported.
"""

from __future__ import annotations

from litestar import Router

from devstack.rest.catalog import SchemaCache
from devstack.rest.config import RestSettings
from devstack.rest.handlers import build_router

__all__ = ["RestSettings", "SchemaCache", "build_rest_router"]


def build_rest_router() -> Router:
    return build_router()
