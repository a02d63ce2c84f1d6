"""`manage.py dispatch_worker [--region default]`: the region's dispatch process (docs/dispatch.md)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from backend import metrics
from backend.request_context import bind_process_log_context
from dispatch.worker import DispatchWorker

STOP_GRACE_S = 5.0


class Command(BaseCommand):
    help = "Run the dispatch worker of one region: the driver index, offer timers and dispatch rounds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--region", default=None, help="dispatch region (default: ROCHDALE_DISPATCH_REGION)"
        )
        parser.add_argument(
            "--batch-window-ms", type=int, default=None, help="override ROCHDALE_BATCH_WINDOW_MS"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = DispatchWorker(options["region"], batch_window_ms=options["batch_window_ms"])

        async def main() -> None:
            loop = asyncio.get_running_loop()
            task = loop.create_task(worker.run())

            def shut_down() -> None:
                worker.request_stop()
                loop.call_later(STOP_GRACE_S, task.cancel)  # should the stream read not come back

            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, shut_down)
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self.stdout.write(f"dispatch worker for region {worker.region} starting")
        # Its own metrics port when its pod is scraped by itself (docs/operations.md, "Metrics").
        metrics.serve_if_configured(f"dispatch worker {worker.region}")
        try:
            # Every line of this process names its region, the loop's tasks and its executor threads alike.
            bind_process_log_context(region=worker.region)
            asyncio.run(main())
        finally:
            metrics.process_exited()  # its gauges (index size, stream lag) leave the web's /metrics
