"""The whole local stack: PostgreSQL bootstrapped like Supabase, migrations applied, and the HTTP gateway.

`DevStack` is used by `bisonsync dev up|down|status|env`, by the test suite (on free ports under a temp dir) and
by `make run`. State (ports, gateway pid) lives in `<root>/state.json` so `down` and `status` work from another
process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import httpx

from bisonsync import migrations as migrate
from devstack.cluster import SUPERUSER, PostgresCluster
from devstack.keys import StackKeys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = Path(os.environ.get("BISONSYNC_DEVSTACK_DIR", PROJECT_ROOT / ".devstack"))
DEFAULT_API_PORT = int(os.environ.get("BISONSYNC_DEVSTACK_API_PORT", "54321"))
DEFAULT_DB_PORT = int(os.environ.get("BISONSYNC_DEVSTACK_DB_PORT", "54322"))


class StackError(RuntimeError):
    """The local stack could not be brought up or reached."""


@dataclass
class StackState:
    api_port: int
    db_port: int
    gateway_pid: int | None = None


@dataclass
class StackEnv:
    supabase_url: str
    anon_key: str
    service_role_key: str
    database_url: str
    jwt_secret: str

    def exports(self) -> str:
        return "\n".join(
            f"export {k}={v}"
            for k, v in (
                ("SUPABASE_URL", self.supabase_url),
                ("SUPABASE_ANON_KEY", self.anon_key),
                ("SUPABASE_SERVICE_ROLE_KEY", self.service_role_key),
                ("DATABASE_URL", self.database_url),
                ("SUPABASE_JWT_SECRET", self.jwt_secret),
            )
        )


def bootstrap_sql() -> str:
    sql = resources.files("devstack").joinpath("sql")
    return sql.joinpath("bootstrap.sql").read_text() + "\n" + sql.joinpath("vault.sql").read_text()


class DevStack:
    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        api_port: int = DEFAULT_API_PORT,
        db_port: int = DEFAULT_DB_PORT,
        migrations_dir: Path = PROJECT_ROOT / "supabase" / "migrations",
        seed_file: Path | None = PROJECT_ROOT / "supabase" / "seed.sql",
        keys: StackKeys | None = None,
        durable: bool | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.state_file = self.root / "state.json"
        saved = self._load_state()
        self.api_port = saved.api_port if saved else api_port
        self.db_port = saved.db_port if saved else db_port
        self.migrations_dir = migrations_dir
        self.seed_file = seed_file
        self.keys = keys or StackKeys.defaults()
        # durable unless told otherwise (durable=False, or BISONSYNC_DEVSTACK_DURABLE=0 as the test suite sets)
        self.cluster = PostgresCluster(self.root / "pg", self.db_port, durable=durable)
        self.gateway_log = self.root / "gateway.log"
        #: crash-safety settings found off by the last `prepare_database` on a cluster meant to be durable
        self.unsafe_settings: list[str] = []

    # -- state ---------------------------------------------------------------------------------------------
    def _load_state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _save_state(self, gateway_pid: int | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(StackState(self.api_port, self.db_port, gateway_pid))))

    # -- urls ----------------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> StackEnv:
        return StackEnv(
            supabase_url=self.api_url,
            anon_key=self.keys.anon_key,
            service_role_key=self.keys.service_role_key,
            database_url=self.cluster.dsn("postgres"),
            jwt_secret=self.keys.jwt_secret,
        )

    # -- database ------------------------------------------------------------------------------------------
    async def prepare_database(self, seed: bool = True) -> list[str]:
        """Init + start the cluster, bootstrap it, apply pending migrations (and the seed on first creation)."""
        fresh = not self.cluster.initialised
        self.cluster.init()
        self.cluster.start()
        conn = await asyncpg.connect(self.cluster.dsn(SUPERUSER))
        try:
            await conn.execute(bootstrap_sql())
            pw = self.cluster.password.replace("'", "''")
            await conn.execute(f"alter role postgres password '{pw}'; alter role authenticator password '{pw}'")
            # lets the realtime slot poller quiet its own session (see gateway_command)
            await conn.execute("grant set on parameter log_min_messages to postgres")
            self.unsafe_settings = await self._unsafe_settings(conn)
            if self.unsafe_settings:  # a cluster left running by an older version keeps what it started with
                print(
                    f"warning: the devstack database runs with {', '.join(self.unsafe_settings)} = off (started by "
                    "an older version): a crash can lose acknowledged writes. Restart it to make it durable: "
                    "bisonsync dev down && bisonsync dev up",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            await conn.close()
        applied = await migrate.migrate(self.cluster.dsn("postgres"), self.migrations_dir)
        if fresh and seed and self.seed_file is not None:
            await migrate.seed(self.cluster.dsn("postgres"), self.seed_file)
        return [m.version for m in applied]

    async def _unsafe_settings(self, conn: asyncpg.Connection) -> list[str]:
        """Crash-safety settings that are off although this cluster should be durable."""
        if not self.cluster.durable:
            return []
        rows = await conn.fetch(
            "select name from pg_catalog.pg_settings where name = any($1::text[]) and setting = 'off' order by name",
            ["fsync", "synchronous_commit", "full_page_writes"],
        )
        return [str(r["name"]) for r in rows]

    # -- gateway -------------------------------------------------------------------------------------------
    def gateway_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "devstack.gateway",
            "--port",
            str(self.api_port),
            "--db-url",
            self.cluster.dsn("authenticator"),
            "--replication-db-url",
            self.replication_dsn(),
        ]

    def replication_dsn(self) -> str:
        """The realtime poller's connection. Each `pg_logical_slot_get_binary_changes` call (every 50 ms) logs
        "starting logical decoding for slot" at LOG, which any log_min_messages below FATAL keeps (~466 KB a
        minute idle): that session alone logs from FATAL up. asyncpg passes extra DSN parameters as settings."""
        return self.cluster.dsn("postgres") + "?log_min_messages=fatal"

    def start_gateway(self, timeout: float = 30) -> subprocess.Popen[bytes]:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.gateway_log.open("ab")
        env = {**os.environ, "SUPABASE_JWT_SECRET": self.keys.jwt_secret}
        proc = subprocess.Popen(
            self.gateway_command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self._save_state(proc.pid)
        self.wait_gateway(timeout, proc)
        return proc

    def wait_gateway(self, timeout: float = 30, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StackError(f"gateway exited with {proc.returncode}; see {self.gateway_log}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(f"gateway on {self.api_url} not healthy after {timeout}s; see {self.gateway_log}")

    def stop_gateway(self) -> None:
        state = self._load_state()
        pid = state.gateway_pid if state else None
        if pid:
            _terminate(pid)
        self._save_state(None)

    # -- whole stack -----------------------------------------------------------------------------------------
    async def up(self) -> None:
        """Bring everything up in the background and return once healthy (idempotent)."""
        self._save_state(None if not self.gateway_alive() else self._gateway_pid())
        await self.prepare_database()
        if not self.gateway_alive():
            self.start_gateway()

    def down(self) -> None:
        self.stop_gateway()
        self.cluster.stop()

    def _gateway_pid(self) -> int | None:
        state = self._load_state()
        return state.gateway_pid if state else None

    def gateway_alive(self) -> bool:
        pid = self._gateway_pid()
        return bool(pid) and _alive(pid)  # type: ignore[arg-type]

    def status(self) -> dict[str, object]:
        healthy = False
        if self.gateway_alive():
            try:
                healthy = httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                healthy = False
        return {
            "root": str(self.root),
            "database": {"port": self.db_port, "running": self.cluster.is_running()},
            "gateway": {"url": self.api_url, "pid": self._gateway_pid(), "healthy": healthy},
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _terminate(pid: int, timeout: float = 10) -> None:
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
