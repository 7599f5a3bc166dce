"""The service side: the automatic provisioning job is scheduled only when enabled, and key fallbacks are exposed
as a Prometheus counter."""

from __future__ import annotations

import logging

import pytest

from bisonsync.keys import runtime
from bisonsync.settings import Settings
from bisonsync.store import Store
from service.background import background_lifespans
from service.metrics import ServiceMetrics


@pytest.mark.parametrize(("interval", "scheduled"), [("0", False), ("600", True)])
def test_key_provision_job_runs_only_when_enabled(
    interval: str, scheduled: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bisonsync.service")
    settings = Settings.from_env(
        {
            "BISON_BASE_URL": "http://bison.test",
            "BISON_API_KEY": "1|not-a-real-key",
            "BISONSYNC_KEY_PROVISION_INTERVAL_S": interval,
        }
    )
    assert settings.key_provision_interval_s == int(interval)
    store: Store = object()  # type: ignore[assignment]  # never called: the jobs are not started
    background_lifespans(settings, store)
    jobs_line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("background jobs:"))
    assert ("key_provision" in jobs_line) is scheduled


def test_key_fallbacks_are_exposed_as_a_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = runtime._FALLBACKS.copy()
    counts["bison.example.com"] += 3
    monkeypatch.setattr(runtime, "_FALLBACKS", counts)
    text = ServiceMetrics().render().decode()
    assert 'bisonsync_bison_key_fallbacks_total{instance="bison.example.com"} 3.0' in text
