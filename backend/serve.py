"""`python -m backend.serve`: the ASGI server (uvicorn) with the settings this project measured for it.

Every place that serves the app (the Procfile, the container, the benchmarks and the real-process tests)
starts it through here, so they all run the same server the figures in the README were taken on:

- no per-message deflate on websockets: a location fix is a ~200-byte JSON frame, so compressing it saves
  a few dozen bytes and costs CPU on both ends at every one of thousands of frames a second;
- no lifespan protocol (Django does not implement it);
- the client is the real one: `X-Forwarded-For` is read only as far as `ROCHDALE_TRUSTED_PROXY_HOPS` trusted
  proxies wrote it (0, the default: not at all; 1 behind the bundled nginx), by `TrustedProxyClient`
  (backend/forwarded.py) instead of uvicorn's address-based proxy headers, which a made-up header fools;
- `--workers` processes (default `ROCHDALE_WEB_WORKERS`, else 1): each process serves its websockets on
  one event loop, so a machine uses one process per core;
- a PostgreSQL connection pool per process (`DATABASE_POOL_MAX_SIZE`, default 16 here; see
  backend/settings.py for why ASGI needs one);
- uvicorn's own lines (startup, errors, the access log) through the project's LOGGING, so they are JSON
  lines with the rest in production (docs/operations.md, "Logs") instead of uvicorn's format.

The GIL switch interval of each worker is set in backend/asgi.py, where every server finds it.
"""

from __future__ import annotations

import argparse
import logging.config
import os

import uvicorn
from asgiref.typing import ASGI3Application
from django.conf import settings

from backend.forwarded import TrustedProxyClient


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("ROCHDALE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ROCHDALE_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("ROCHDALE_WEB_WORKERS", "1")))
    parser.add_argument("--log-level", default=os.environ.get("ROCHDALE_SERVER_LOG_LEVEL", "warning"))
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "16")  # read by each worker's settings
    # Reading the settings loads the module, not Django's apps: the supervisor stays free of them.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    logging.config.dictConfig(settings.LOGGING)
    uvicorn.run(
        "backend.serve:served_application",
        factory=True,
        proxy_headers=False,  # TrustedProxyClient decides what X-Forwarded-* may change
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # LOGGING above; log_level still sets uvicorn's loggers' level
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="off",
        ws_per_message_deflate=False,
    )


def served_application() -> ASGI3Application:
    """uvicorn's app factory, called in each worker process: the project's ASGI app behind the proxy rule."""
    # Imported here, in the worker: importing backend.asgi sets Django up, which must happen after main()
    # has put the pool size in the environment and never in uvicorn's supervisor process.
    from backend.asgi import application

    return TrustedProxyClient(application, hops=settings.ROCHDALE_TRUSTED_PROXY_HOPS)


if __name__ == "__main__":
    main()
