"""Road-engine fixtures on the Helsinki tiles (tests/roads_fixtures.py builds them once per machine).

`valhalla_service` runs the real `valhalla_service` binary from the pyvalhalla wheel on a free port for the
module that asks for it; `running_valhalla_service` is the same as a context manager, for a test that needs
a server of its own to stop. The process is killed on every way out: the context manager's `finally`, and,
should pytest itself be killed, the kernel (the child asks for SIGKILL when its parent dies).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dispatch.roads.engine import VALHALLA_BIN, TileSet, engine_config
from dispatch.roads.routers import ModelRouter, ValhallaRouter

# How long a fresh server may take to answer /status before the fixture gives up (it takes ~0.1 s here).
SERVICE_START_DEADLINE_S = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True, slots=True)
class ValhallaService:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if this test process dies without its finally blocks
    # (SIGKILL, a crash), the kernel kills the server too, so no stray server keeps a port.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # valhalla_service ignores SIGTERM for seconds (its worker threads finish first); nothing of it needs
    # to survive a test, so it is killed outright and reaped.
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@contextlib.contextmanager
def running_valhalla_service(tiles: TileSet, workdir: Path) -> Iterator[ValhallaService]:
    """`valhalla_service CONFIG 1` on the tiles in `tiles`, listening on a free local port, until the
    block ends."""
    port = _free_port()
    config_path = workdir / f"valhalla-service-{port}.json"
    config = engine_config(tiles.tile_dir, listen=f"tcp://127.0.0.1:{port}")
    config_path.write_text(json.dumps(config))
    log_path = workdir / f"valhalla-service-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(VALHALLA_BIN / "valhalla_service"), str(config_path), "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        service = ValhallaService(f"http://127.0.0.1:{port}", process, log_path)
        _wait_until_answering(service)
        yield service
    finally:
        _stop(process)


def _wait_until_answering(service: ValhallaService) -> None:
    deadline = time.monotonic() + SERVICE_START_DEADLINE_S
    while True:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"valhalla_service exited with {service.process.returncode}: "
                + service.log_path.read_text(errors="replace")[-2000:]
            )
        try:
            if httpx.get(f"{service.base_url}/status", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"valhalla_service did not answer on {service.base_url} in time")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def valhalla_service(
    helsinki_tiles: TileSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ValhallaService]:
    """A real valhalla_service on the Helsinki tiles, shared by one test module."""
    with running_valhalla_service(helsinki_tiles, tmp_path_factory.mktemp("valhalla-service")) as service:
        yield service


@pytest.fixture(scope="module")
def snap_radius_m() -> float:
    from django.conf import settings

    return float(settings.ROCHDALE_ROAD_SNAP_RADIUS_M)


@pytest.fixture(scope="module")
def in_process(helsinki_tiles: TileSet, snap_radius_m: float) -> ValhallaRouter:
    """Valhalla in this process on the Helsinki tiles, with the settings' snap radius."""
    return ValhallaRouter(helsinki_tiles, snap_radius_m=snap_radius_m)


@pytest.fixture
def model() -> ModelRouter:
    from dispatch.eta_model import route_estimator

    return ModelRouter(route_estimator())
