"""The emulator's settings: what `supabase start` configures PostgREST with, read from `supabase/config.toml`."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: overrides where the gateway reads `[api]` from (default: the project's `supabase/config.toml`)
CONFIG_ENV = "BISONSYNC_SUPABASE_CONFIG"
PROJECT_CONFIG = Path(__file__).resolve().parent.parent.parent / "supabase" / "config.toml"


@dataclass(frozen=True)
class RestSettings:
    """PGRST_DB_SCHEMAS, PGRST_DB_ANON_ROLE, PGRST_DB_EXTRA_SEARCH_PATH and PGRST_DB_MAX_ROWS of the local stack."""

    schemas: tuple[str, ...] = ("public", "graphql_public")
    anon_role: str = "anon"
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    max_rows: int | None = 1000

    @classmethod
    def from_api_section(cls, api: dict[str, Any]) -> RestSettings:
        """`[api] schemas / extra_search_path / max_rows` as the Supabase CLI passes them to PostgREST."""
        default = cls()
        schemas = api.get("schemas", default.schemas)
        extra = api.get("extra_search_path", default.extra_search_path)
        max_rows = api.get("max_rows", default.max_rows)
        if not isinstance(schemas, list | tuple) or not all(isinstance(s, str) and s for s in schemas) or not schemas:
            raise ValueError("[api] schemas must be a non-empty list of schema names")
        if not isinstance(extra, list | tuple) or not all(isinstance(s, str) and s for s in extra):
            raise ValueError("[api] extra_search_path must be a list of schema names")
        if max_rows is not None and (not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 0):
            raise ValueError("[api] max_rows must be a non-negative integer")
        return cls(schemas=tuple(schemas), extra_search_path=tuple(extra), max_rows=max_rows or None)

    @classmethod
    def from_config(cls, path: Path | None = None) -> RestSettings:
        """Read `[api]` from `path`, else `$BISONSYNC_SUPABASE_CONFIG`, else the project's config.toml; the
        defaults when there is no such file."""
        if path is None:
            env = os.environ.get(CONFIG_ENV)
            path = Path(env) if env else PROJECT_CONFIG
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        api = data.get("api", {})
        return cls.from_api_section(api if isinstance(api, dict) else {})
