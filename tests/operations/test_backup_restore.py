"""Backups: `manage.py backup` of a database with real history, `manage.py restore` into a fresh database,
and the restored copy passes `ledger_verify`, `audit_verify` and `audit_head_verify` (run as the operator
runs them, against the restored database) with every table's row count equal to the original's."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from backend.backups import BackupError, backup_create, checksum_path, target_from_settings
from backend.fares.models import JournalEntry
from governance.audit_head import PUBLIC_KEY_FILE_NAME, audit_head_export
from governance.models import AuditEntry
from tests.operations.coop_history import coop_history

MANAGE = Path(settings.BASE_DIR) / "manage.py"


def _url_of(name: str) -> str:
    target = target_from_settings()
    credentials = target.user + (f":{target.password}" if target.password else "")
    return f"postgis://{credentials}@{target.host or 'localhost'}:{target.port or 5432}/{name}"


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, empty database of its own (no PostGIS either: the dump brings the extension), dropped after."""
    name = f"rochdale_restore_{uuid.uuid4().hex[:12]}"
    admin = target_from_settings()
    with psycopg.connect(
        dbname="postgres",
        host=admin.host,
        port=admin.port,
        user=admin.user,
        password=admin.password,
        autocommit=True,
    ) as server:
        server.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _row_counts(cursor: psycopg.Cursor | object, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # names from Django's introspection
        counts[table] = cursor.fetchone()[0]
    return counts


def _manage(*arguments: str, database_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, str(MANAGE), *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_fresh_database_that_verifies(tmp_path: Path, fresh_database: str, settings):
    settings.ROCHDALE_AUDIT_HEAD_KEY_FILE = str(tmp_path / "keys" / "audit_head.pem")
    history = coop_history()
    assert JournalEntry.objects.count() >= history.members + history.trips  # shares, fares, instalments
    assert AuditEntry.objects.count() == history.members + history.directors
    head_file = audit_head_export(tmp_path / "heads" / "head.json")
    assert head_file is not None

    call_command("backup", out=f"{tmp_path}/backups/")
    (dump,) = (tmp_path / "backups").glob("rochdale-*.dump")
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(checksum_path(dump).stat().st_mode) == 0o600
    # The sidecar is sha256sum's own format, so an operator can check a copy with the standard tool.
    checked = subprocess.run(
        ["sha256sum", "-c", checksum_path(dump).name], cwd=dump.parent, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    restored_url = _url_of(fresh_database)
    call_command("restore", str(dump), database_url=restored_url)

    verifications = {
        "ledger_verify": _manage("ledger_verify", database_url=restored_url),
        "audit_verify": _manage("audit_verify", database_url=restored_url),
        "audit_head_verify": _manage(
            "audit_head_verify",
            str(head_file),
            "--public-key",
            str(head_file.parent / PUBLIC_KEY_FILE_NAME),
            database_url=restored_url,
        ),
    }
    outputs = {name: process.communicate(timeout=90)[0] for name, process in verifications.items()}
    for name, process in verifications.items():
        assert process.returncode == 0, f"{name} failed on the restored database:\n{outputs[name]}"
    assert "Ledger OK" in outputs["ledger_verify"]
    assert f"audit log OK: {history.members + history.directors} entries" in outputs["audit_verify"]
    assert "audit head OK" in outputs["audit_head_verify"]

    tables = sorted(connection.introspection.table_names(include_views=False))
    with connection.cursor() as cursor:
        original = _row_counts(cursor, tables)
    with psycopg.connect(restored_url.replace("postgis://", "postgresql://")) as restored:
        copy = _row_counts(restored.cursor(), tables)
    assert copy == original
    assert original["fares_posting"] > 0 and original["governance_auditentry"] > 0

    # The restored database now holds tables: a second restore is refused without --force, and with it
    # replaces them with the dump's, counts unchanged.
    with pytest.raises(CommandError, match="already holds tables"):
        call_command("restore", str(dump), database_url=restored_url)
    call_command("restore", str(dump), database_url=restored_url, force=True)
    with psycopg.connect(restored_url.replace("postgis://", "postgresql://")) as restored:
        assert _row_counts(restored.cursor(), tables) == original


@pytest.mark.django_db
def test_a_damaged_or_unverifiable_dump_is_refused_before_the_database_is_touched(tmp_path: Path):
    dump = tmp_path / "copy.dump"
    dump.write_bytes(b"PGDMP" + bytes(200))
    with pytest.raises(CommandError, match="is missing: the dump cannot be verified"):
        call_command("restore", str(dump), "--database-url", "postgis://nobody@127.0.0.1:1/none")
    checksum_path(dump).write_text(f"{hashlib.sha256(b'something else').hexdigest()}  copy.dump\n")
    # Refused on the checksum, before any connection: the URL points at a port nothing listens on.
    with pytest.raises(CommandError, match="does not match its checksum"):
        call_command("restore", str(dump), "--database-url", "postgis://nobody@127.0.0.1:1/none")


@pytest.mark.django_db
def test_restore_refuses_a_database_that_holds_tables(tmp_path: Path):
    dump = backup_create(tmp_path / "test.dump")  # Django's (test) database: migrated, so not empty
    with pytest.raises(CommandError, match=r"already holds tables.*--force"):
        call_command("restore", str(dump))


@pytest.mark.django_db
def test_a_pg_dump_older_than_the_server_is_refused_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        server_major = int(cursor.fetchone()[0]) // 10000
    # A pg_dump one major version behind the server, first on PATH.
    old = tmp_path / "bin" / "pg_dump"
    old.parent.mkdir()
    old.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {server_major - 1}.4'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{old.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(
        BackupError,
        match=f"PostgreSQL {server_major - 1} but the server is PostgreSQL "
        f"{server_major}: install postgresql-client-{server_major}",
    ):
        backup_create(tmp_path / "never.dump")
    assert not any(tmp_path.glob("*.dump*"))


@pytest.mark.django_db
def test_the_password_reaches_pg_dump_through_the_environment_not_the_command_line(
    tmp_path: Path, monkeypatch
):
    """pg_dump's command line (what `ps` shows every user) carries no connection secret."""
    seen = tmp_path / "seen"
    real = subprocess.run(["which", "pg_dump"], capture_output=True, text=True, check=True).stdout.strip()
    spy = tmp_path / "bin" / "pg_dump"
    spy.parent.mkdir()
    spy.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {seen}\nprintf "%s\\n" "PGPASSWORD=$PGPASSWORD" >> {seen}\n'
        f'exec {real} "$@"\n'
    )
    spy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy.parent}{os.pathsep}{os.environ['PATH']}")
    target = target_from_settings()
    with_password = dataclasses.replace(
        target, host=target.host or "localhost", password="s3cret-not-on-argv"
    )
    # A server that trusts local connections ignores the password; only the command line matters here.
    with contextlib.suppress(BackupError):
        backup_create(tmp_path / "spied.dump", target=with_password)
    lines = seen.read_text().splitlines()
    arguments = [line for line in lines if not line.startswith("PGPASSWORD=")]
    assert "PGPASSWORD=s3cret-not-on-argv" in lines
    assert arguments and all("s3cret" not in line for line in arguments)
