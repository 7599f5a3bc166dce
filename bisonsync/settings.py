"""Settings, read once from the environment with typed defaults; a missing required value fails fast.

Every setting is declared once, as a field of `Settings` made by `setting(...)`: its environment variable,
default, parser, secret flag and meaning. `SETTINGS` (derived from the fields), `Settings.from_env`, `bisonsync
config` and docs/configuration.md (generated; a test keeps it current) all read that one declaration.

To add a setting: one field, e.g.
    my_timeout_s: float = setting("BISONSYNC_MY_TIMEOUT_S", 5.0, "What it bounds.", parse=parse_float)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: the one page cap: most pages of 15 read per workspace listing (2000 = 30,000 mailboxes); the client's default
#: and `BISON_MAX_PAGES`'s
DEFAULT_MAX_PAGES = 2000


class SettingsError(ValueError):
    """A setting is missing or malformed."""


#: (variable name, raw non-blank value) -> typed value; raises SettingsError naming the variable
Parser = Callable[[str, str], Any]


def parse_str(name: str, raw: str) -> str:
    return raw


def parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def parse_positive_int(name: str, raw: str) -> int:
    value = parse_int(name, raw)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


def parse_float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def parse_csv(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(name: str, raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}, got {raw!r}")


@dataclass(frozen=True, slots=True)
class SettingSpec:
    #: attribute of `Settings`
    field: str
    #: environment variable
    env: str
    #: typed default (None: unset)
    value: Any
    help: str
    parse: Parser = parse_str
    #: kept out of repr() and masked by `bisonsync config`
    secret: bool = False

    @property
    def default(self) -> str | None:
        """The default as it would be written in the environment (None: unset)."""
        if self.value is None:
            return None
        if isinstance(self.value, bool):
            return "1" if self.value else "0"
        if isinstance(self.value, tuple):
            return ",".join(self.value) or None
        return str(self.value)

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.env, "").strip()
        return self.parse(self.env, raw) if raw else self.value


def setting(env: str, default: Any, help: str, *, parse: Parser = parse_str, secret: bool = False) -> Any:
    """A `Settings` field with its declaration (read back by `SETTINGS`)."""
    spec = {"env": env, "help": help, "parse": parse, "secret": secret}
    return dataclasses.field(default=default, repr=not secret, metadata={"setting": spec})


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = setting(
        "DATABASE_URL", None, "Direct PostgreSQL URL; when set, stores use asyncpg (the fast path).", secret=True
    )
    supabase_url: str | None = setting(
        "SUPABASE_URL", None, "Supabase project URL; used when DATABASE_URL is unset (supabase-py path)."
    )
    supabase_service_role_key: str | None = setting(
        "SUPABASE_SERVICE_ROLE_KEY", None, "service_role key (or sb_secret_ key), supabase-py path.", secret=True
    )
    supabase_anon_key: str | None = setting(
        "SUPABASE_ANON_KEY", None, "anon key (or sb_publishable_ key), given to the dashboard page."
    )
    webhook_token: str | None = setting(
        "BISONSYNC_WEBHOOK_TOKEN", None, "Global webhook token; per-workspace tokens are stored hashed.", secret=True
    )
    webhook_max_bytes: int = setting(
        "BISONSYNC_WEBHOOK_MAX_BYTES", 262_144, "Largest webhook body accepted (413 above).", parse=parse_int
    )
    default_instance: str = setting(
        "BISONSYNC_DEFAULT_INSTANCE",
        "default",
        "Instance of webhook deliveries when neither BISON_INSTANCE nor BISON_BASE_URL is set (never the payload's).",
    )
    webhook_instances: tuple[str, ...] = setting(
        "BISONSYNC_WEBHOOK_INSTANCES",
        (),
        "More instances one deployment serves (hosts or `*.domain`, comma-separated); a webhook URL names one by "
        "`?instance=`.",
        parse=parse_csv,
    )
    host: str = setting("BISONSYNC_HOST", "127.0.0.1", "Address `bisonsync serve` binds.")
    port: int = setting("BISONSYNC_PORT", 8000, "Port `bisonsync serve` binds.", parse=parse_int)
    db_pool_max: int = setting("BISONSYNC_DB_POOL_MAX", 10, "Largest asyncpg pool (direct path).", parse=parse_int)
    header_timeout_s: int = setting(
        "BISONSYNC_HEADER_TIMEOUT_S",
        10,
        "`serve`: seconds a request's head (request line + headers) may take; slower: 408, connection closed.",
        parse=parse_positive_int,
    )
    body_timeout_s: int = setting(
        "BISONSYNC_BODY_TIMEOUT_S",
        30,
        "`serve`: seconds a request body may take after its head; slower: 408, connection closed.",
        parse=parse_positive_int,
    )
    max_connections: int = setting(
        "BISONSYNC_MAX_CONNECTIONS",
        500,
        "`serve`: most open connections; past it a new connection gets 503 and is closed.",
        parse=parse_positive_int,
    )
    bison_base_url: str | None = setting(
        "BISON_BASE_URL", None, "Email Bison instance base URL, e.g. https://bison.example.com."
    )
    bison_api_key: str | None = setting(
        "BISON_API_KEY", None, "Email Bison API key (super-admin or workspace-scoped).", secret=True
    )
    bison_instance: str | None = setting(
        "BISON_INSTANCE", None, "Instance label of polled data and webhooks (default: the host of BISON_BASE_URL)."
    )
    bison_max_pages: int = setting(
        "BISON_MAX_PAGES",
        DEFAULT_MAX_PAGES,
        "Most pages of 15 read per workspace listing (2000 = 30,000 mailboxes).",
        parse=parse_int,
    )
    poll_interval_s: int = setting(
        "BISONSYNC_POLL_INTERVAL_S", 300, "Seconds between scheduled mailbox syncs (0 disables).", parse=parse_int
    )
    jobs_enabled: bool = setting(
        "BISONSYNC_JOBS",
        True,
        "Run background jobs (poll, alerts, snapshots, reconcile, ledger pruning) in `serve`; 0: off.",
        parse=parse_bool,
    )
    ledger_retention_days: int | None = setting(
        "BISONSYNC_LEDGER_RETENTION_DAYS",
        None,
        "Days webhook payloads (lead PII) are kept before pruning; when set, written to the database's "
        "`ledger_payload_retention_days` (else the database's value, default 90, applies).",
        parse=parse_positive_int,
    )
    prune_interval_s: int = setting(
        "BISONSYNC_PRUNE_INTERVAL_S",
        86_400,
        "Seconds between ledger prunes in `serve` (0 disables).",
        parse=parse_int,
    )
    key_provision_interval_s: int = setting(
        "BISONSYNC_KEY_PROVISION_INTERVAL_S",
        0,
        "Seconds between automatic `keys provision` runs in `serve` (keys for new workspaces); 0 disables.",
        parse=parse_int,
    )
    slack_webhook_url: str | None = setting(
        "SLACK_WEBHOOK_URL", None, "Slack incoming webhook for alerts (optional).", secret=True
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Each setting from its variable (blank = unset = the default), parsed; a malformed value raises."""
        return cls(**read_env(SETTINGS, os.environ if environ is None else environ))

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


def specs_of(cls: type[Any]) -> tuple[SettingSpec, ...]:
    """The settings a dataclass declares with `setting(...)`, in field order (any group of knobs, e.g. the alert
    thresholds, can be declared the same way and read with `read_env`)."""
    return tuple(
        SettingSpec(field=f.name, value=f.default, **f.metadata["setting"])
        for f in dataclasses.fields(cls)
        if "setting" in f.metadata
    )


def read_env(specs: tuple[SettingSpec, ...], environ: Mapping[str, str]) -> dict[str, Any]:
    """{field: value} for `specs` from `environ` (blank = unset = the default); a malformed value raises."""
    return {spec.field: spec.read(environ) for spec in specs}


#: every setting of `Settings`, in declaration order
SETTINGS: tuple[SettingSpec, ...] = specs_of(Settings)


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
