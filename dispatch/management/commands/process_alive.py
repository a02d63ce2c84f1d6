"""`manage.py process_alive --role dispatch|worker|beat [--region R]`: the exec probe of a long-running
process (Kubernetes liveness/readiness, compose healthchecks).

Exits 0 when the process's heartbeat (backend/heartbeats.py) is fresher than
`ROCHDALE_HEARTBEAT_STALE_S`, 1 otherwise, with one line saying why. A Celery worker or beat is checked by
its own container's key (the probe runs in the same container, so has the same host name): another
replica's beat must not keep a hung one alive. So is a dispatch worker, active or standby (both beat their
host's key; docs/dispatch.md, "Failover").
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from backend import heartbeats
from backend.heartbeats import BeatStatus, Role


class Command(BaseCommand):
    help = "Exit 0 if this process's heartbeat is fresh, 1 (with the reason) if not: for exec probes."
    # A probe runs every few seconds under a timeout: no system checks, nothing but one Redis read.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument(
            "--region", default=None, help="the dispatch worker's region (default: ROCHDALE_DISPATCH_REGION)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = Role(options["role"])
        key = heartbeats.key_for_role(role, region=options["region"])
        beat = heartbeats.read([key])[key]
        stale_s = settings.ROCHDALE_HEARTBEAT_STALE_S
        if beat.status is BeatStatus.OK:
            self.stdout.write(f"{role} alive: {key} beat {beat.age_s} s ago")
            return
        if beat.status is BeatStatus.DOWN:
            reason = f"Redis unreachable, cannot read {key}"
        elif beat.age_s is None:
            reason = f"no heartbeat at {key}"
        else:
            reason = f"{key} last beat {beat.age_s} s ago (stale after {stale_s:g} s)"
        self.stderr.write(f"{role} not alive: {reason}")
        sys.exit(1)
