"""GoTrue subset served under `/auth/v1` by the devstack gateway: email + password sign-in, refresh, user, logout
and the admin user API, enough for supabase-js / supabase-py sessions against the local stack.

What is and isn't emulated: docs/devstack.md, section "Auth (GoTrue subset)".
"""

from __future__ import annotations

from devstack.gotrue.router import build_auth_router

__all__ = ["build_auth_router"]
