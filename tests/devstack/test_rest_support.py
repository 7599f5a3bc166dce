"""Helpers for the REST emulator tests (this module has no tests of its own).

Every test module creates its own tables and functions in `public` under unique names, with explicit grants and
RLS policies, and drives them through the real supabase-py client.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from devstack.stack import StackEnv


def unique(prefix: str = "rest_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def client(
    env: StackEnv, key: str | None = None, *, token: str | None = None, http: httpx.AsyncClient | None = None
) -> AsyncClient:
    """A supabase-py client; with `token`, requests carry that user access token (anon key as apikey)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options = AsyncClientOptions(headers=headers, httpx_client=http)
    return await acreate_client(env.supabase_url, key or env.anon_key, options=options)


async def raw(
    env: StackEnv,
    method: str,
    path: str,
    *,
    key: str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A plain HTTP request to `/rest/v1<path>` with the headers supabase-py would send."""
    key = key or env.anon_key
    all_headers = {"apikey": key, "Authorization": f"Bearer {token or key}", **(headers or {})}
    async with httpx.AsyncClient(base_url=f"{env.supabase_url}/rest/v1", timeout=10) as http:
        return await http.request(method, path, headers=all_headers, **kwargs)
