"""Backups of the database with pg_dump and restores with pg_restore (docs/operations.md, "Backups and
restore"); `manage.py backup` and `manage.py restore` are the operator's way in.

- A backup is pg_dump's custom format (``-Fc``: compressed, restorable table by table), named for the
  database and the UTC time, written whole (temporary file, then rename) with mode 0600 (it holds every
  member's personal data), next to a ``.sha256`` file in ``sha256sum`` format (``sha256sum -c`` checks it).
- A restore checks that checksum first, refuses a database that already holds tables unless forced, and
  runs pg_restore in one transaction that stops at the first error (``--single-transaction
  --exit-on-error``), so a failed restore leaves the target as it was. ``--no-owner``: the restoring role
  owns what it creates, since the roles of the machine that made the dump need not exist here.
- The connection comes from Django's DATABASES (or a URL) and reaches the tools as libpq environment
  variables: the password never appears on a command line, where ``ps`` would show it to every user.
- pg_dump refuses a server newer than itself, with a message easy to miss in a cron mail; we compare the
  major versions first and say what to install.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dj_database_url
import psycopg
from django.conf import settings
from django.db import connections

from backend.files import write_atomically

__all__ = [
    "BackupError",
    "DatabaseTarget",
    "backup_create",
    "backup_restore",
    "checksum_path",
    "checksum_verify",
    "database_is_empty",
    "target_from_settings",
    "target_from_url",
]

# libpq connection parameters that may sit in DATABASES[...]["OPTIONS"], and the variables pg_dump reads.
_LIBPQ_OPTION_VARIABLES = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}

# Schemas that are PostgreSQL's or PostGIS's own, never the application's tables.
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "topology", "tiger", "tiger_data")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where a dump comes from or a restore goes to, as libpq parameters."""

    name: str
    host: str
    port: str
    user: str
    password: str
    options: Mapping[str, str]

    def environment(self) -> dict[str, str]:
        """The process environment for pg_dump, pg_restore and psql: libpq reads these variables, so no
        secret goes on the command line."""
        env = dict(os.environ)
        for variable in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE"):
            env.pop(variable, None)
        values = {
            "PGDATABASE": self.name,
            "PGHOST": self.host,
            "PGPORT": self.port,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }
        env.update({variable: value for variable, value in values.items() if value})
        for option, value in self.options.items():
            env[_LIBPQ_OPTION_VARIABLES[option]] = value
        return env

    def connect(self) -> psycopg.Connection:
        parameters = {"dbname": self.name, "host": self.host, "port": self.port, "user": self.user}
        parameters["password"] = self.password
        parameters.update(self.options)
        return psycopg.connect(**{key: value for key, value in parameters.items() if value}, autocommit=True)

    def __str__(self) -> str:
        return f"{self.name} on {self.host or 'the local socket'}:{self.port or 5432}"


def _target(database: Mapping[str, object]) -> DatabaseTarget:
    options = database.get("OPTIONS") or {}
    assert isinstance(options, Mapping)
    return DatabaseTarget(
        name=str(database.get("NAME") or ""),
        host=str(database.get("HOST") or ""),
        port=str(database.get("PORT") or ""),
        user=str(database.get("USER") or ""),
        password=str(database.get("PASSWORD") or ""),
        # Only libpq's own parameters: the psycopg pool settings and the like mean nothing to pg_dump.
        options={key: str(value) for key, value in options.items() if key in _LIBPQ_OPTION_VARIABLES},
    )


def target_from_settings(alias: str = "default") -> DatabaseTarget:
    """The database Django is connected to (the connection's settings, so a test database is honoured)."""
    return _target(connections[alias].settings_dict)


def target_from_url(url: str) -> DatabaseTarget:
    return _target(dj_database_url.parse(url))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not on PATH: install the PostgreSQL client (postgresql-client)")
    return path


def _tool_major_version(tool: str) -> int:
    try:
        output = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise BackupError(f"cannot run {tool} --version: {error}") from error
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if found is None:
        raise BackupError(f"cannot read the version of {tool} from {output.strip()!r}")
    return int(found.group(1))


def _server_major_version(target: DatabaseTarget) -> int:
    try:
        with target.connect() as connection:
            version_num = connection.execute("SHOW server_version_num").fetchone()
    except psycopg.Error as error:
        raise BackupError(f"cannot connect to {target}: {error}") from error
    assert version_num is not None
    return int(version_num[0]) // 10000


def _pg_dump_checked(target: DatabaseTarget) -> str:
    """pg_dump, once it is known to be no older than the server (an older one cannot read the catalogue
    of a newer server and stops)."""
    pg_dump = _tool("pg_dump")
    client, server = _tool_major_version(pg_dump), _server_major_version(target)
    if client < server:
        raise BackupError(
            f"{pg_dump} is PostgreSQL {client} but the server is PostgreSQL {server}: "
            f"install postgresql-client-{server} (or newer) and put its bin directory first on PATH"
        )
    return pg_dump


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".sha256")


def default_backup_name(database: str, at: datetime) -> str:
    return f"rochdale-{database}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.dump"


def backup_create(
    out: str | Path | None = None, *, target: DatabaseTarget | None = None, now: datetime | None = None
) -> Path:
    """Dump ``target`` (Django's database by default) to ``out``: a file, or a directory to name it in (one
    that exists, or a name ending in ``/``; ``ROCHDALE_BACKUP_DIR`` by default). Returns the dump's path;
    its checksum sits beside it."""
    target = target or target_from_settings()
    pg_dump = _pg_dump_checked(target)
    name = default_backup_name(target.name, now or datetime.now(UTC))
    if out is None:
        path = Path(settings.ROCHDALE_BACKUP_DIR) / name
    elif str(out).endswith(os.sep) or Path(out).is_dir():
        path = Path(out) / name
    else:
        path = Path(out)
    # The directory holds every member's data: only the owner may list or read it when we make it.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def dump_into(handle: int) -> None:
        finished = subprocess.run(
            [pg_dump, "--format=custom", "--no-password"],
            stdout=handle,
            stderr=subprocess.PIPE,
            env=target.environment(),
            text=False,
        )
        if finished.returncode != 0:
            message = finished.stderr.decode(errors="replace").strip()
            raise BackupError(f"pg_dump of {target} failed (exit {finished.returncode}): {message}")

    write_atomically(path, dump_into, mode=0o600)
    line = f"{_sha256_of(path)}  {path.name}\n"
    write_atomically(checksum_path(path), line.encode(), mode=0o600)
    return path


def checksum_verify(dump: Path) -> str:
    """The dump's sha256 once it matches its ``.sha256`` file; a BackupError when it does not or there is
    none (a restore from an unverified file could load a truncated copy)."""
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist")
    sidecar = checksum_path(dump)
    if not sidecar.is_file():
        raise BackupError(
            f"{sidecar} is missing: the dump cannot be verified "
            f"(if you trust it, write one with: sha256sum {dump.name} > {sidecar.name})"
        )
    fields = sidecar.read_text().split()
    expected = fields[0].lower() if fields else ""
    actual = _sha256_of(dump)
    if actual != expected:
        raise BackupError(
            f"{dump} does not match its checksum (expected {expected or 'nothing'}, found {actual}): "
            "the copy is damaged or incomplete"
        )
    return actual


def database_is_empty(target: DatabaseTarget) -> bool:
    """No table, view or sequence of the target's own: the tables of extensions (PostGIS's
    spatial_ref_sys in a database made with ``CREATE EXTENSION postgis``) do not count."""
    try:
        with target.connect() as connection:
            row = connection.execute(
                """
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                  AND n.nspname <> ALL(%s)
                  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                  )
                """,
                [list(_SYSTEM_SCHEMAS)],
            ).fetchone()
    except psycopg.Error as error:
        raise BackupError(f"cannot connect to {target}: {error}") from error
    assert row is not None
    return row[0] == 0


def backup_restore(dump: Path, *, target: DatabaseTarget | None = None, force: bool = False) -> None:
    """Load ``dump`` into ``target`` (Django's database by default), which must exist. A target that holds
    tables is refused unless ``force``, which drops the dump's objects there first (``--clean``)."""
    target = target or target_from_settings()
    checksum_verify(dump)
    pg_restore = _tool("pg_restore")
    empty = database_is_empty(target)
    if not empty and not force:
        raise BackupError(
            f"{target} already holds tables: restore into a new database (createdb), "
            "or pass --force to replace what is there"
        )
    command = [
        pg_restore,
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        f"--dbname={target.name}",
    ]
    if not empty:
        command += ["--clean", "--if-exists"]
    finished = subprocess.run([*command, str(dump)], capture_output=True, text=True, env=target.environment())
    if finished.returncode != 0:
        raise BackupError(
            f"pg_restore into {target} failed (exit {finished.returncode}), nothing was changed: "
            f"{finished.stderr.strip()}"
        )
