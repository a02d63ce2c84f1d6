"""`python -m backend.serve`: the ASGI server (uvicorn) with the settings this project measured for it.

Every place that serves the app (the Procfile, the container, the benchmarks and the real-process tests)
starts it through here, so they all run the same server the figures in the README were taken on:

- no per-message deflate on websockets: a location fix is a ~200-byte JSON frame, so compressing it saves
  a few dozen bytes and costs CPU on both ends at every one of thousands of frames a second;
- no lifespan protocol (Django does not implement it);
- X-Forwarded-* trusted only from the addresses in `FORWARDED_ALLOW_IPS` (uvicorn's default: 127.0.0.1);
- `--workers` processes (default `ROCHDALE_WEB_WORKERS`, else 1): each process serves its websockets on
  one event loop, so a machine uses one process per core;
- a PostgreSQL connection pool per process (`DATABASE_POOL_MAX_SIZE`, default 16 here; see
  backend/settings.py for why ASGI needs one).

The GIL switch interval of each worker is set in backend/asgi.py, where every server finds it.
"""

from __future__ import annotations

import argparse
import os

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("ROCHDALE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ROCHDALE_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("ROCHDALE_WEB_WORKERS", "1")))
    parser.add_argument("--log-level", default=os.environ.get("ROCHDALE_SERVER_LOG_LEVEL", "warning"))
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "16")  # read by each worker's settings
    uvicorn.run(
        "backend.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="off",
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
