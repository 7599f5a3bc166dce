"""Browser-test fixtures: Debian's Chromium (installed here when missing and possible), playwright-core from npm
(pinned in this folder's package-lock.json; it never downloads a browser), and the service app under uvicorn on a
free port, talking to the session devstack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar

from bisonsync.settings import Settings
from bisonsync.store.postgres_store import PostgresStore
from devstack.ports import free_port
from devstack.stack import PROJECT_ROOT
from service.app import create_app
from tests.conftest import StackHandle

BROWSER_DIR = Path(__file__).resolve().parent
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
WEBHOOK_TOKEN = "browser-test-webhook-token"
# each test run seeds its own instance under this domain; its webhooks name it with ?instance=
WEBHOOK_INSTANCES = "*.bison.test"


def _apt_install_chromium() -> str | None:
    """Install Debian's chromium; None on success, else why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(cmd)} failed: {exc}"
        if done.returncode != 0:
            return f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        why = _apt_install_chromium()
        if why is not None or not CHROMIUM.exists():
            pytest.skip(f"Chromium is not installed at {CHROMIUM} and could not be installed: {why or 'unknown'}")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_dir() -> Path:
    """tests/browser with playwright-core and axe-core installed from the committed lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: cannot run playwright-core")
    modules = BROWSER_DIR / "node_modules"
    if not all((modules / pkg / "package.json").exists() for pkg in ("playwright-core", "axe-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True, timeout=600)
    return BROWSER_DIR


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def build_service_app(settings: Settings, store: PostgresStore) -> Litestar:
    """The service as `make run` serves it (`create_app` includes the dashboard routes)."""

    @contextlib.asynccontextmanager
    async def store_lifespan(_: Litestar) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    return create_app(settings, store, extra_lifespans=[store_lifespan])


@dataclass(frozen=True)
class ServiceHandle:
    url: str
    webhook_token: str


@pytest.fixture(scope="session")
def service(devstack: StackHandle) -> Iterator[ServiceHandle]:
    """The service app under uvicorn in a thread (its own event loop), on a free port."""
    env = devstack.env
    settings = Settings(
        database_url=env.database_url,
        supabase_url=env.supabase_url,
        supabase_service_role_key=env.service_role_key,
        supabase_anon_key=env.anon_key,
        webhook_token=WEBHOOK_TOKEN,
        webhook_instances=(WEBHOOK_INSTANCES,),
        poll_interval_s=0,
    )
    app = build_service_app(settings, PostgresStore(env.database_url, max_size=4))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start under uvicorn")
        time.sleep(0.05)
    try:
        yield ServiceHandle(url=f"http://127.0.0.1:{port}", webhook_token=WEBHOOK_TOKEN)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
