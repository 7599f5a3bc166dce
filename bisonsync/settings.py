"""Settings, read once from the environment with typed defaults; a missing required value fails fast.

Every setting is declared once in `SETTINGS` with its variable, default and meaning, so `bisonsync config`
and docs/configuration.md are generated from the same table the code reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class SettingsError(ValueError):
    """A setting is missing or malformed."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    env: str
    default: str | None
    help: str
    secret: bool = False


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("DATABASE_URL", None, "Direct PostgreSQL URL; when set, stores use asyncpg (the fast path).", True),
    SettingSpec("SUPABASE_URL", None, "Supabase project URL; used when DATABASE_URL is unset (supabase-py path)."),
    SettingSpec("SUPABASE_SERVICE_ROLE_KEY", None, "service_role key (or sb_secret_ key), supabase-py path.", True),
    SettingSpec("SUPABASE_ANON_KEY", None, "anon key (or sb_publishable_ key), given to the dashboard page."),
    SettingSpec("BISONSYNC_WEBHOOK_TOKEN", None, "Global webhook token; per-workspace tokens are stored hashed.", True),
    SettingSpec("BISONSYNC_WEBHOOK_MAX_BYTES", "262144", "Largest webhook body accepted (413 above)."),
    SettingSpec(
        "BISONSYNC_DEFAULT_INSTANCE",
        "default",
        "Instance of webhook deliveries when neither BISON_INSTANCE nor BISON_BASE_URL is set (never the payload's).",
    ),
    SettingSpec(
        "BISONSYNC_WEBHOOK_INSTANCES",
        None,
        "More instances one deployment serves (hosts or `*.domain`, comma-separated); a webhook URL names one by "
        "`?instance=`.",
    ),
    SettingSpec("BISONSYNC_HOST", "127.0.0.1", "Address `bisonsync serve` binds."),
    SettingSpec("BISONSYNC_PORT", "8000", "Port `bisonsync serve` binds."),
    SettingSpec("BISONSYNC_DB_POOL_MAX", "10", "Largest asyncpg pool (direct path)."),
    SettingSpec("BISON_BASE_URL", None, "Email Bison instance base URL, e.g. https://bison.example.com."),
    SettingSpec("BISON_API_KEY", None, "Email Bison API key (super-admin or workspace-scoped).", True),
    SettingSpec(
        "BISON_INSTANCE", None, "Instance label of polled data and webhooks (default: the host of BISON_BASE_URL).",
    ),
    SettingSpec("BISON_MAX_PAGES", "2000", "Most pages of 15 read per workspace listing (2000 = 30,000 mailboxes)."),
    SettingSpec("BISONSYNC_POLL_INTERVAL_S", "300", "Seconds between scheduled mailbox syncs (0 disables)."),
    SettingSpec("BISONSYNC_JOBS", "1", "Run background jobs (poll, alerts, snapshots, reconcile) in `serve`; 0: off."),
    SettingSpec("SLACK_WEBHOOK_URL", None, "Slack incoming webhook for alerts (optional).", True),
)


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    # secrets (SettingSpec.secret) stay out of repr(): a logged or error-reported Settings must not carry them
    database_url: str | None = field(default=None, repr=False)
    supabase_url: str | None = None
    supabase_service_role_key: str | None = field(default=None, repr=False)
    supabase_anon_key: str | None = None
    webhook_token: str | None = field(default=None, repr=False)
    webhook_max_bytes: int = 262_144
    default_instance: str = "default"
    webhook_instances: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_max: int = 10
    bison_base_url: str | None = None
    bison_api_key: str | None = field(default=None, repr=False)
    bison_instance: str | None = None
    bison_max_pages: int = 2000
    poll_interval_s: int = 300
    jobs_enabled: bool = True
    slack_webhook_url: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            spec = next(s for s in SETTINGS if s.env == name)
            value = env.get(name, "").strip()
            return value if value else spec.default

        return cls(
            database_url=get("DATABASE_URL"),
            supabase_url=get("SUPABASE_URL"),
            supabase_service_role_key=get("SUPABASE_SERVICE_ROLE_KEY"),
            supabase_anon_key=get("SUPABASE_ANON_KEY"),
            webhook_token=get("BISONSYNC_WEBHOOK_TOKEN"),
            webhook_max_bytes=_parse_int("BISONSYNC_WEBHOOK_MAX_BYTES", get("BISONSYNC_WEBHOOK_MAX_BYTES") or ""),
            default_instance=get("BISONSYNC_DEFAULT_INSTANCE") or "default",
            webhook_instances=tuple(
                part.strip() for part in (get("BISONSYNC_WEBHOOK_INSTANCES") or "").split(",") if part.strip()
            ),
            host=get("BISONSYNC_HOST") or "127.0.0.1",
            port=_parse_int("BISONSYNC_PORT", get("BISONSYNC_PORT") or ""),
            db_pool_max=_parse_int("BISONSYNC_DB_POOL_MAX", get("BISONSYNC_DB_POOL_MAX") or ""),
            bison_base_url=get("BISON_BASE_URL"),
            bison_api_key=get("BISON_API_KEY"),
            bison_instance=get("BISON_INSTANCE"),
            bison_max_pages=_parse_int("BISON_MAX_PAGES", get("BISON_MAX_PAGES") or ""),
            poll_interval_s=_parse_int("BISONSYNC_POLL_INTERVAL_S", get("BISONSYNC_POLL_INTERVAL_S") or ""),
            jobs_enabled=(get("BISONSYNC_JOBS") or "1").lower() not in ("0", "false", "no", "off"),
            slack_webhook_url=get("SLACK_WEBHOOK_URL"),
        )

    def instance_label(self) -> str:
        """The tenant `instance` polled data is filed under: BISON_INSTANCE, else the host of BISON_BASE_URL."""
        from bisonsync.events import instance_host

        if self.bison_instance:
            return instance_host(self.bison_instance)
        if not self.bison_base_url:
            raise SettingsError("BISON_BASE_URL is not set")
        return instance_host(self.bison_base_url)

    def webhook_instance(self) -> str:
        """The instance every webhook delivery belongs to unless its URL names another: the same key polled data is
        filed under (`instance_label`), else BISONSYNC_DEFAULT_INSTANCE. Never the payload's `instance_url`."""
        from bisonsync.events import instance_host

        if self.bison_instance or self.bison_base_url:
            return self.instance_label()
        return instance_host(self.default_instance)

    def require_store(self) -> None:
        if self.database_url:
            return
        if self.supabase_url and self.supabase_service_role_key:
            return
        raise SettingsError(
            "no database configured: set DATABASE_URL (direct) or SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY"
        )


def configuration_markdown() -> str:
    """The configuration reference (docs/configuration.md is this text)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `bisonsync.settings.SETTINGS` (`bisonsync config --markdown`). Every value comes from the",
        "environment; secrets are never read from files in the repository.",
        "",
        "| variable | default | secret | meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(unset)"
        lines.append(f"| `{s.env}` | {default} | {'yes' if s.secret else ''} | {s.help} |")
    return "\n".join(lines) + "\n"
