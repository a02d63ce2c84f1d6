"""What the members' portal costs a cheap phone and the server: bytes, queries and render time per page.

    .venv/bin/python infra/benchmarks/bench_portal.py [--requests 40]

Against a scratch database `rochdale_bench_portal` (recreated and migrated) and Redis db 12. It runs
`seed_demo` (every demo driver a member, an open bylaw proposal with a comment, an election taking
nominations), signs in as a demo driver who is a member but not a director (no second factor), and fetches
each portal page `--requests` times in process with Django's test client, so the figures are the server's
own work without a network. For each page it prints the median and 95th percentile render time, the SQL
queries one render makes, the HTML's size raw and gzipped (what a phone downloads; nginx compresses), and
the same for the one stylesheet and script the portal links. The baseline, measured in the same run, is the
sign-in page (`/account/login/`, a template and a form with no query of the portal's): each page's median
is also given as a multiple of it, which holds on a noisy machine where milliseconds do not. Nothing is
asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DB_NAME = "rochdale_bench_portal"


def _setup_django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ["DJANGO_SETTINGS_MODULE"] = "backend.settings"
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", f"postgis://postgres@localhost:5432/{DB_NAME}"
    )
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/12")
    os.environ.setdefault("ROCHDALE_ROUTER", "model")
    import psycopg

    with psycopg.connect("postgresql://postgres@localhost:5432/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    credentials = Path(tempfile.mkdtemp(prefix="bench-portal-")) / "demo-credentials.json"
    call_command("seed_demo", "--credentials-file", str(credentials), stdout=open(os.devnull, "w"))  # noqa: SIM115


class _QueryCounter:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def __call__(self, execute, sql, params, many, context):
        self.seen.append(sql)
        return execute(sql, params, many, context)


def _static_size(relative: str) -> tuple[int, int]:
    raw = (REPO / "mobile_api" / "static" / relative).read_bytes()
    return len(raw), len(gzip.compress(raw))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40)
    options = parser.parse_args()
    _setup_django()

    from django.db import connection
    from django.test import Client

    from backend.accounts.models import User
    from dispatch.management.commands.seed_demo import DEMO_BYLAW_TITLE, DEMO_DRIVERS, DEMO_ELECTION_TITLE
    from governance.models import Election, Proposal

    member = User.objects.get(phone=DEMO_DRIVERS[-1][0])  # a member, not a founding director
    proposal = Proposal.objects.get(title=DEMO_BYLAW_TITLE)
    election = Election.objects.get(title=DEMO_ELECTION_TITLE)
    anonymous = Client()
    client = Client()
    client.force_login(member)
    pages = [
        ("sign-in page (baseline)", anonymous, "/account/login/"),
        ("home", client, "/members/"),
        ("proposals", client, "/members/proposals/"),
        ("a proposal and its discussion", client, f"/members/proposals/{proposal.id}/"),
        ("elections", client, "/members/elections/"),
        ("an election", client, f"/members/elections/{election.id}/"),
        ("my membership", client, "/members/membership/"),
        ("my work", client, "/members/work/"),
        ("the co-op's numbers", client, "/members/numbers/"),
        ("notification settings", client, "/members/notifications/"),
    ]
    rows = []
    for name, browser, path in pages:
        response = browser.get(path)  # warm: templates compiled, connections open
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        # Counted at the cursor: execute_wrapper sees every statement the request runs.
        queries: list[str] = []
        with connection.execute_wrapper(_QueryCounter(queries)):
            browser.get(path)
        samples = []
        for _ in range(options.requests):
            started = time.perf_counter()
            response = browser.get(path)
            samples.append((time.perf_counter() - started) * 1000)
        html = response.content
        ordered = sorted(samples)
        rows.append(
            (
                name,
                statistics.median(samples),
                ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
                len(queries),
                len(html),
                len(gzip.compress(html)),
            )
        )
    baseline = rows[0][1]
    header = ("page", "median ms", "p95 ms", "x base", "queries", "HTML B", "gzip B")
    print("{:32} {:>9} {:>7} {:>6} {:>7} {:>7} {:>6}".format(*header))
    for name, median, p95, count, raw, packed in rows:
        ratio = median / baseline
        print(f"{name:32} {median:9.1f} {p95:7.1f} {ratio:6.1f} {count:7d} {raw:7d} {packed:6d}")
    for relative in ("members/portal.css", "members/ballot.js", "members/push.js"):
        raw, packed = _static_size(relative)
        print(f"static {relative}: {raw} B, {packed} B gzipped (cached after the first page)")


if __name__ == "__main__":
    main()
