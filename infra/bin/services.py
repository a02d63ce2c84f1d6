"""Make sure PostgreSQL (with PostGIS) and Redis answer at DATABASE_URL / REDIS_URL.

Where nothing answers but the server binaries exist, start project-local ones under var/ (a newcomer's
embedded defaults). Then create the database and the postgis extension. Standard library + psycopg + redis.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"


def say(message: str) -> None:
    print(f"\033[1;34m[rochdale]\033[0m {message}", file=sys.stderr, flush=True)


def postgres_params(url: str) -> dict[str, object]:
    parsed = urlparse(url)
    return {
        "host": parsed.hostname or "localhost",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password or None,
        "dbname": (parsed.path or "/rochdale").lstrip("/") or "rochdale",
    }


def postgres_answers(params: dict[str, object]) -> bool:
    try:
        with psycopg.connect(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            password=params["password"],
            dbname="postgres",
            connect_timeout=2,
        ):
            return True
    except psycopg.OperationalError:
        return False


def pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def start_local_postgres(params: dict[str, object]) -> None:
    bindir = pg_bindir()
    if bindir is None:
        sys.exit(
            "No PostgreSQL answers and no PostgreSQL binaries are installed (apt-get install postgresql)."
        )
    data = VAR / "pg"
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root; the cluster belongs to the postgres system user.
        run_as = ["runuser", "-u", "postgres", "--"]
        VAR.mkdir(exist_ok=True)
        data.mkdir(exist_ok=True)
        shutil.chown(data, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        say(f"initialising a project-local PostgreSQL cluster in {data}")
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                str(params["user"]),
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    say(f"starting the project-local PostgreSQL on port {params['port']}")
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-o",
            f"-p {params['port']} -k /tmp -c listen_addresses=localhost",
            "start",
        ],
        check=True,
    )


def ensure_database(params: dict[str, object]) -> None:
    if not postgres_answers(params):
        start_local_postgres(params)
    conninfo = {k: params[k] for k in ("host", "port", "user", "password")}
    with psycopg.connect(**conninfo, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [params["dbname"]]).fetchone()
        if not exists:
            say(f"creating database {params['dbname']}")
            conn.execute(f'CREATE DATABASE "{params["dbname"]}"')
    with psycopg.connect(**conninfo, dbname=params["dbname"], autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def ensure_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        return
    except redis.exceptions.ConnectionError:
        pass
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            "No Redis answers at REDIS_URL and redis-server is not installed (apt-get install redis-server)."
        )
    parsed = urlparse(url)
    port = parsed.port or 6379
    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    say(f"starting a project-local redis-server on port {port}")
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(VAR / "redis"),
            "--logfile",
            str(VAR / "redis" / "redis.log"),
        ],
        check=True,
    )
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    sys.exit("redis-server did not come up; see var/redis/redis.log")


if __name__ == "__main__":
    ensure_database(postgres_params(os.environ["DATABASE_URL"]))
    ensure_redis(os.environ["REDIS_URL"])
    say("PostgreSQL (PostGIS) and Redis are ready")
