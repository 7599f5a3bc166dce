"""Settings are declared once (variable, default, parser, secret flag, meaning) and everything reads that."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bisonsync.settings import SETTINGS, Settings, SettingsError, configuration_markdown


def test_every_field_is_a_declared_setting_with_a_unique_variable() -> None:
    assert [s.field for s in SETTINGS] == [f.name for f in dataclasses.fields(Settings)]
    envs = [s.env for s in SETTINGS]
    assert len(envs) == len(set(envs))
    defaults = Settings()
    for spec in SETTINGS:
        assert getattr(defaults, spec.field) == spec.value, spec.env
        assert spec.help.strip(), spec.env


def test_from_env_parses_each_setting_and_blank_means_default() -> None:
    env = {spec.env: "" for spec in SETTINGS}
    assert Settings.from_env(env) == Settings()
    s = Settings.from_env(
        {
            "BISONSYNC_PORT": " 9000 ",
            "BISONSYNC_JOBS": "off",
            "BISONSYNC_LEDGER_RETENTION_DAYS": "30",
            "SUPABASE_URL": "https://x.supabase.co",
        }
    )
    assert (s.port, s.jobs_enabled, s.ledger_retention_days, s.supabase_url) == (
        9000,
        False,
        30,
        "https://x.supabase.co",
    )
    assert Settings.from_env({"BISONSYNC_JOBS": "YES"}).jobs_enabled is True


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("BISONSYNC_PORT", "eighty"),
        ("BISONSYNC_WEBHOOK_MAX_BYTES", "1.5"),
        ("BISONSYNC_JOBS", "maybe"),
        ("BISONSYNC_LEDGER_RETENTION_DAYS", "0"),
    ],
)
def test_a_malformed_value_is_an_error_naming_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: value})


def test_secrets_stay_out_of_repr_and_are_flagged_in_the_reference() -> None:
    secrets = {s.field for s in SETTINGS if s.secret}
    assert {
        "database_url",
        "supabase_service_role_key",
        "webhook_token",
        "bison_api_key",
        "slack_webhook_url",
    } <= secrets
    values: dict[str, Any] = {name: "s3cr3t-value" for name in secrets}
    text = repr(dataclasses.replace(Settings(), **values))
    assert "s3cr3t-value" not in text
    doc = configuration_markdown()
    for spec in SETTINGS:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{spec.env}` |"))
        assert ("| yes |" in row) == spec.secret


def test_another_group_of_knobs_declares_and_reads_the_same_way() -> None:
    from dataclasses import dataclass

    from bisonsync.settings import parse_float, read_env, setting, specs_of

    @dataclass(frozen=True)
    class Knobs:
        timeout_s: float = setting("X_TIMEOUT_S", 5.0, "How long.", parse=parse_float)
        label: str | None = setting("X_LABEL", None, "A label.")

    specs = specs_of(Knobs)
    assert [(s.env, s.default) for s in specs] == [("X_TIMEOUT_S", "5.0"), ("X_LABEL", None)]
    assert Knobs(**read_env(specs, {"X_TIMEOUT_S": "2.5"})) == Knobs(timeout_s=2.5)
    with pytest.raises(SettingsError, match="X_TIMEOUT_S"):
        read_env(specs, {"X_TIMEOUT_S": "soon"})
