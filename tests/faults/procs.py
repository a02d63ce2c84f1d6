"""Real processes for the fault suite: a private redis-server, a private PostgreSQL cluster
(`private_postgres`), a dispatch worker, waiting helpers.

Every process here is started in its own process group, on a private port where it listens, under a tmp
dir, and is killed (the whole group) when its context manager exits, whatever the test did. Nothing here
touches the shared PostgreSQL or Redis services.

    with private_redis_cluster() as cluster:           # three cluster-enabled redis-servers, joined
        settings.ROCHDALE_REDIS_CLUSTER_URL = cluster.url()

    with private_redis() as redis_server:              # redis-server --port P --save "" --appendonly no
        env = {"REDIS_URL": redis_server.url(db=1)}
        with start_asgi_server(extra_env=env) as server, dispatch_worker(extra_env=env) as worker:
            redis_server.kill()                          # kill -9
            redis_server.start()                         # the same port, empty
            wait_until(lambda: ..., timeout_s=10, what="...")
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from dispatch.live import worker_heartbeat_key
from tests.live_server import REPO, _server_env

REDIS_SERVER = "redis-server"


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until[T](condition: Callable[[], T], *, timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy (returned); AssertionError naming `what` after
    `timeout_s`. Exceptions from `condition` count as "not yet" (the thing polled may be down)."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # polling a service that may be down
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what} (last error: {last_error!r})")
        time.sleep(interval_s)


def kill_group(process: subprocess.Popen, *, sig: int = signal.SIGKILL) -> None:
    """Signal the process's whole group (it was started with `start_new_session`) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def stop_group(process: subprocess.Popen, *, grace_s: float = 10) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after `grace_s`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    kill_group(process)


@dataclass
class RedisServer:
    """A redis-server of the test's own, without persistence: a restart comes back empty, like a lost
    cache. `kill()` is kill -9; `start()` again listens on the same port."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None
    starts: int = 0
    log_paths: list[Path] = field(default_factory=list)
    extra_args: tuple[str, ...] = ()

    def url(self, *, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, *, timeout_s: float = 10) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log_path = self.directory / f"redis-{self.starts}.log"
        self.log_paths.append(log_path)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(log_path),
                "--daemonize", "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self.ping, timeout_s=timeout_s, what=f"redis-server on port {self.port} answers PING")

    def ping(self) -> bool:
        """PING over a raw socket (no client library state to go stale across restarts)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown, no save; whatever it held is gone."""
        assert self.process is not None
        kill_group(self.process)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())


@contextlib.contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A started RedisServer on a free port, killed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="rochdale-redis-") as directory:
        server = RedisServer(port=free_port(), directory=Path(directory))
        try:
            server.start()
            yield server
        finally:
            if server.process is not None:
                kill_group(server.process)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@dataclass
class RedisClusterNodes:
    """Three masters of a Redis Cluster of the test's own (16384 slots split among them, no replicas)."""

    servers: list[RedisServer]

    def url(self) -> str:
        """Any one node: the client learns the others and the slot map from it."""
        return self.servers[0].url()

    def state(self) -> str:
        return redis.Redis(port=self.servers[0].port, socket_timeout=2).cluster("info")["cluster_state"]


@contextlib.contextmanager
def private_redis_cluster(*, nodes: int = 3) -> Iterator[RedisClusterNodes]:
    """`nodes` redis-servers with `--cluster-enabled yes` on private loopback ports, joined by
    `redis-cli --cluster create`, every slot served (`cluster_state:ok`) before the block starts; all
    killed when it ends."""
    with tempfile.TemporaryDirectory(prefix="rochdale-redis-cluster-") as directory:
        servers = []
        try:
            for _ in range(nodes):
                port = free_cluster_port()
                node_dir = Path(directory) / str(port)
                node_dir.mkdir()
                server = RedisServer(
                    port=port,
                    directory=node_dir,
                    extra_args=(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout", "2000",
                    ),
                )  # fmt: skip
                servers.append(server)
                server.start()
            subprocess.run(
                [
                    "redis-cli", "--cluster", "create",
                    *(f"127.0.0.1:{server.port}" for server in servers),
                    "--cluster-replicas", "0", "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )  # fmt: skip
            cluster = RedisClusterNodes(servers)
            wait_until(lambda: cluster.state() == "ok", timeout_s=20, what="the private Redis Cluster is ok")
            yield cluster
        finally:
            for server in servers:
                if server.process is not None:
                    kill_group(server.process)


@dataclass
class ManagedProcess:
    """A project process (manage.py command) with its combined stdout/stderr in a log file."""

    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def manage_process(*arguments: str, extra_env: dict[str, str] | None = None) -> Iterator[ManagedProcess]:
    """`python manage.py <arguments>` against the test database (env as tests/live_server.py sets it,
    plus `extra_env`), in its own process group, stopped (TERM, then KILL) when the block ends."""
    with project_process(
        [sys.executable, "manage.py", *arguments], label=arguments[0], extra_env=extra_env
    ) as process:
        yield process


@contextlib.contextmanager
def celery_process(*arguments: str, extra_env: dict[str, str] | None = None) -> Iterator[ManagedProcess]:
    """`celery -A backend.celery:app <arguments>` (`worker`, `beat`) like manage_process: the test database,
    its own process group, stopped when the block ends."""
    with project_process(
        [sys.executable, "-m", "celery", "-A", "backend.celery:app", *arguments],
        label=f"celery-{arguments[0]}",
        extra_env=extra_env,
    ) as process:
        yield process


@contextlib.contextmanager
def celery_worker_and_beat(
    *, extra_env: dict[str, str] | None = None, directory: Path
) -> Iterator[tuple[ManagedProcess, ManagedProcess]]:
    """A Celery worker and beat as production runs them (infra/Procfile), beat's schedule under
    `directory`; returned once the worker is ready to take tasks."""
    with (
        celery_process(
            "worker", "--loglevel=INFO", "--concurrency=1", "--without-gossip", "--without-mingle",
            extra_env=extra_env,
        ) as worker,
        celery_process(
            "beat", "--loglevel=INFO", f"--schedule={directory / 'beat-schedule'}", extra_env=extra_env
        ) as beat,
    ):  # fmt: skip

        def ready() -> bool:
            for process in (worker, beat):
                if not process.alive():
                    raise AssertionError(f"a celery process exited:\n{process.log()}")
            return "ready." in worker.log()

        wait_until(ready, timeout_s=30, what="the celery worker is ready")
        yield worker, beat


@contextlib.contextmanager
def celery_worker(
    *, extra_env: dict[str, str] | None = None, concurrency: int = 1, timeout_s: float = 30
) -> Iterator[ManagedProcess]:
    """A Celery worker alone (start beat with `celery_process("beat", ...)` when the test needs the
    schedule), returned once it is ready to take tasks. Its prefork children share its process group, so
    `kill_group(worker.process)` is a kill -9 of the whole worker, mid-task."""
    with celery_process(
        "worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
        f"--hostname=fault-{uuid.uuid4().hex[:8]}@%h",
        extra_env=extra_env,
    ) as worker:  # fmt: skip

        def ready() -> bool:
            if not worker.alive():
                raise AssertionError(f"the celery worker exited:\n{worker.log()}")
            return "ready." in worker.log()

        wait_until(ready, timeout_s=timeout_s, what="the celery worker is ready")
        yield worker


@contextlib.contextmanager
def project_process(
    argv: list[str], *, label: str, extra_env: dict[str, str] | None = None
) -> Iterator[ManagedProcess]:
    """`argv` in the repository against the test database (env as tests/live_server.py sets it, plus
    `extra_env`), in its own process group, stopped (TERM, then KILL) when the block ends."""
    log_path = Path(tempfile.gettempdir()) / f"rochdale-{label}-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=_server_env(extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield ManagedProcess(process, log_path)
        finally:
            stop_group(process)


@contextlib.contextmanager
def dispatch_worker(
    *, region: str = "default", extra_env: dict[str, str] | None = None, timeout_s: float = 30
) -> Iterator[ManagedProcess]:
    """`manage.py dispatch_worker`, returned once its heartbeat is in the Redis it was given."""
    env = dict(extra_env or {})
    with manage_process("dispatch_worker", "--region", region, extra_env=env) as worker:
        client = redis.Redis.from_url(_server_env(env)["REDIS_URL"], socket_timeout=2)
        try:

            def beating() -> bool:
                if not worker.alive():
                    raise AssertionError(f"the dispatch worker exited:\n{worker.log()}")
                return bool(client.exists(worker_heartbeat_key(region)))

            try:
                wait_until(beating, timeout_s=timeout_s, what="the dispatch worker's heartbeat")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{worker.log()}") from None
        finally:
            client.close()
        yield worker


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's binaries (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    assert found, "no PostgreSQL server binaries are installed (apt-get install postgresql)"
    return found[-1].parent


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of the test's own (initdb under a tmp dir, trust auth, a free port, PostGIS from
    the system's extension files), which a test may restart or kill -9 without touching the shared
    service. It belongs to the postgres system user when the tests run as root (initdb refuses root)."""

    directory: Path
    port: int
    bindir: Path = field(default_factory=postgres_bindir)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgis://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *arguments: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*run_as, str(self.bindir / tool), *arguments],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def _checked(self, tool: str, *arguments: str, timeout_s: float = 60) -> None:
        done = self._run(tool, *arguments, timeout_s=timeout_s)
        if done.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}\n{self.log()}"
            )

    def init(self) -> None:
        if os.geteuid() == 0:
            os.chown(self.directory, *_postgres_owner())
        self._checked(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        # A throwaway cluster: durability settings off (a kill -9 still loses nothing committed to the
        # OS, which is what these tests kill).
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "listen_addresses = '127.0.0.1'\n"
                "max_connections = 60\n"
                "shared_buffers = 32MB\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )

    def start(self, *, timeout_s: float = 30) -> None:
        """Start it (after a kill -9, once the old backends noticed and exited: crash recovery runs)."""

        def started() -> bool:
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "start")
            return done.returncode == 0

        wait_until(
            started, timeout_s=timeout_s, what=f"PostgreSQL starts on port {self.port}", interval_s=0.2
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is ended, then the server comes back."""
        self._checked("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-m", "fast", "-w", "restart")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill_postmaster(self) -> None:
        """kill -9 of the postmaster; its backends notice and exit on their own, as after a crash."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout_s=10, what=f"postmaster {pid} is gone")

    def stop(self) -> None:
        """Stop it now (immediate), or kill -9 its postmaster if pg_ctl cannot."""
        if self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop").returncode != 0:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(self.postmaster_pid(), signal.SIGKILL)

    def createdb(self, name: str, *, template: str | None = None) -> str:
        """Create a database (a copy of `template` when given) and return its DATABASE_URL."""
        copy = ["-T", template] if template else []
        self._checked("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *copy, name)
        return self.url(name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _postgres_owner() -> tuple[int, int]:
    record = pwd.getpwnam("postgres")
    return record.pw_uid, record.pw_gid


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    """A started PostgresCluster on a free port, stopped (or killed) and deleted when the block ends."""
    with tempfile.TemporaryDirectory(prefix="rochdale-pg-") as directory:
        cluster = PostgresCluster(directory=Path(directory), port=free_port())
        cluster.init()
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


def migrate_database(database_url: str) -> None:
    """`manage.py migrate` against another database than the test one (a private cluster's)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=_server_env({"DATABASE_URL": database_url}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"migrate failed:\n{done.stdout}{done.stderr}"


def assert_invariants_in(database_url: str) -> None:
    """`assert_invariants()` (tests/faults/invariants.py) against another database than the test one, in a
    process of its own so this process's connection to the test database is left alone."""
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from tests.faults.invariants import assert_invariants; assert_invariants()"],
        cwd=REPO,
        env=_server_env({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "backend.settings"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"invariants broken in {database_url}:\n{done.stderr[-4000:]}"
