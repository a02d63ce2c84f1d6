"""A lean driver load generator: one process holding thousands of driver websockets (bench_e2e.py starts
several, `--driver-procs`).

    python infra/benchmarks/loadgen_drivers.py --port 8765 --source-ip 127.0.0.2 < assignments

It reads `driver_id ticket` lines on stdin up to a blank line, then commands (`interval 2.0`, `stop`) from
the same pipe, and writes JSON lines on stdout: `{"online": n}` and `{"sent": n}` tallies once a second,
`{"offer": trip_id, "t": ...}` and `{"accept": trip_id, "t": ...}` as they happen (`t` is
`time.perf_counter()`, CLOCK_MONOTONIC on Linux, so the parent process can compare it with its own), and
`{"error": code}` for each error frame or lost socket.

Why not the `websockets` client: at 30,000 drivers and a fix every 4 s (7,500 fixes/s) a generator must
cost a fraction of a core, and a client library's per-message work (framing, masking, an asyncio task and
timer per socket) costs several times that. Here each socket is a bare asyncio Protocol on uvloop; one
ticker per process sends the fixes due in each 5 ms slot; frames are built from a template and masked
with the all-zero key (RFC 6455 requires a client to mask, and the server unmasks whatever key it gets, so
zero keeps the bytes as they are); only the server's few text frames are parsed, and pings answered.
Sockets come from `--source-ip` (a loopback address of its own per process), because one address has only
about 28,000 ephemeral ports towards the server's one port.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import random
import struct
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import cast

CENTRE = (40.7580, -73.9855)
# Fixes due in a slot leave together. Phones send independently, so the slot is kept well under the socket
# servers' 10 ms batching window (ROCHDALE_FIX_BATCH_MS): with 50 ms slots the server saw fixes in bursts,
# batched more of them per write than real traffic allows, and its CPU per fix read low.
SLOT_S = 0.005
HANDSHAKE_KEY = base64.b64encode(b"rochdale-loadgen").decode()
ZERO_MASK = b"\x00\x00\x00\x00"


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame, masked with the zero key (payload unchanged)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + ZERO_MASK + payload


def text(message: dict) -> bytes:
    return frame(json.dumps(message, separators=(",", ":")).encode())


class Generator:
    """The process's sockets, its fix ticker and its tallies."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.interval_s = 4.0
        self.sockets: list[DriverSocket] = []
        self.online = 0
        self.sent = 0
        self.stopping = asyncio.Event()
        self.stamp = ""  # the fixes' `recorded_at`, refreshed once per slot for every socket
        self.tasks: set[asyncio.Task] = set()  # connects and trip moves under way (the loop keeps weak refs)

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def emit(self, **fields: object) -> None:
        sys.stdout.write(json.dumps(fields) + "\n")

    async def run(self, assignments: list[tuple[str, str]], commands: asyncio.StreamReader) -> None:
        reporter = asyncio.create_task(self.report())
        ticker = asyncio.create_task(self.tick())
        listener = asyncio.create_task(self.listen(commands))
        for index, (driver_id, ticket) in enumerate(assignments):
            rng = random.Random(driver_id)
            socket = DriverSocket(self, driver_id, rng)
            self.sockets.append(socket)
            self.spawn(socket.open(ticket))
            if index % 50 == 49:
                await asyncio.sleep(self.args.wave_pause_s)  # connect in waves, as apps do after a deploy
        await self.stopping.wait()
        for task in (reporter, ticker, listener):
            task.cancel()
        for socket in self.sockets:
            socket.close()
        self.emit(sent=self.sent, online=self.online, final=True)
        sys.stdout.flush()

    async def listen(self, commands: asyncio.StreamReader) -> None:
        while line := (await commands.readline()).decode().strip():
            word, _, value = line.partition(" ")
            if word == "interval":
                self.interval_s = float(value)
            elif word == "stop":
                break
        self.stopping.set()

    async def report(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.emit(online=self.online, sent=self.sent)
            sys.stdout.flush()

    async def tick(self) -> None:
        """Every slot, send a fix from each online socket whose turn it is: one timer for the process, each
        socket at its own phase of the interval."""
        started = time.monotonic()
        slot = 0
        while True:
            slot += 1
            await asyncio.sleep(max(0.0, started + slot * SLOT_S - time.monotonic()))
            self.stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            slots = max(1, round(self.interval_s / SLOT_S))
            for socket in self.sockets[slot % slots :: slots]:
                if socket.online:
                    socket.send_fix()


class DriverSocket(asyncio.Protocol):
    """One driver's websocket: the handshake, `online`, fixes when the ticker says, and the trip moves
    after an offer (accept at once, then arrived, started, completed a few seconds apart)."""

    def __init__(self, generator: Generator, driver_id: str, rng: random.Random) -> None:
        self.generator = generator
        self.driver_id = driver_id
        self.rng = rng
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.online = False
        self.lat = CENTRE[0] + rng.uniform(-0.04, 0.04)
        self.lng = CENTRE[1] + rng.uniform(-0.05, 0.05)
        self.heading = rng.uniform(0, 360)

    async def open(self, ticket: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: self,
                "127.0.0.1",
                self.generator.args.port,
                local_addr=(self.generator.args.source_ip, 0),
            )
        except OSError as exc:
            self.generator.emit(error=f"connect_{type(exc).__name__}")
            return
        assert self.transport is not None
        self.transport.write(
            (
                f"GET /ws/driver/?ticket={ticket} HTTP/1.1\r\nHost: 127.0.0.1:{self.generator.args.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n"
                "Origin: http://localhost\r\n\r\n"
            ).encode()
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.online:
            self.generator.online -= 1
        self.online = False
        if not self.generator.stopping.is_set():
            self.generator.emit(error="socket_lost" if self.upgraded else "handshake_refused")
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.write(frame(struct.pack("!H", 1000), opcode=0x8))
            self.transport.close()

    def send(self, message: dict) -> None:
        if self.transport is not None:
            self.transport.write(text(message))

    def send_fix(self) -> None:
        self.heading = (self.heading + self.rng.uniform(-20, 20)) % 360
        step = math.radians(self.heading)
        self.lat += 40.0 / 111_000.0 * math.cos(step)
        self.lng += 40.0 / 84_000.0 * math.sin(step)
        payload = (
            f'{{"type":"location","lat":{self.lat:.6f},"lng":{self.lng:.6f},"heading":{self.heading:.0f},'
            f'"speed_mps":10.0,"accuracy_m":5.0,"recorded_at":"{self.generator.stamp}"}}'
        ).encode()
        if self.transport is not None:
            self.transport.write(frame(payload))
            self.generator.sent += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:12])
            del self.buffer[: end + 4]
            if b" 101" not in status:
                self.generator.emit(error=f"handshake_{status[9:12].decode(errors='replace')}")
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.send({"type": "online", "ref": "on"})
        while True:
            parsed = self._next_frame()
            if parsed is None:
                return
            opcode, payload = parsed
            if opcode == 0x1:
                self.on_text(json.loads(payload))
            elif opcode == 0x9 and self.transport is not None:  # ping: answer with its payload
                self.transport.write(frame(payload, opcode=0xA))
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()

    def _next_frame(self) -> tuple[int, bytes] | None:
        """The next whole frame from the server (never masked, never fragmented here), or None."""
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        opcode, size = buffer[0] & 0x0F, buffer[1] & 0x7F
        start = 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < start + size:
            return None
        payload = bytes(buffer[start : start + size])
        del buffer[: start + size]
        return opcode, payload

    def on_text(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "result" and message.get("ref") == "on" and not self.online:
            self.online = True
            self.generator.online += 1
        elif kind == "offer":
            self.generator.spawn(self.take(message))
        elif kind == "error" and message.get("code") not in ("offer_not_open",):
            self.generator.emit(error=str(message.get("code")))

    async def take(self, offer: dict) -> None:
        trip_id = offer["trip_id"]
        now = time.perf_counter()
        self.generator.emit(offer=trip_id, t=now)
        self.generator.emit(accept=trip_id, t=now)
        self.send({"type": "offer.accept", "offer_id": offer["offer_id"], "ref": f"a{trip_id}"})
        await asyncio.sleep(3)
        for kind in ("trip.arrived", "trip.start"):
            self.send({"type": kind, "trip_id": trip_id, "ref": kind})
            await asyncio.sleep(1)
        self.send({"type": "trip.complete", "trip_id": trip_id, "ref": "c"})


async def main_async(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    assignments = []
    while line := (await commands.readline()).decode().strip():
        driver_id, ticket = line.split()
        assignments.append((driver_id, ticket))
    await Generator(args).run(assignments, commands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source-ip", default="127.0.0.1")
    parser.add_argument("--wave-pause-s", type=float, default=0.25, help="pause after each 50 connects")
    args = parser.parse_args()
    import uvloop

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
