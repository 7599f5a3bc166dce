"""The emulator's settings: what `supabase start` configures PostgREST with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestSettings:
    """PGRST_DB_SCHEMAS, PGRST_DB_ANON_ROLE, PGRST_DB_EXTRA_SEARCH_PATH and PGRST_DB_MAX_ROWS of the local stack."""

    schemas: tuple[str, ...] = ("public", "graphql_public")
    anon_role: str = "anon"
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    max_rows: int | None = 1000
