"""The socket frames of docs/asyncapi.yaml, checked against what the real consumers send and accept.

`FrameContract` reads the AsyncAPI document: for each channel (a socket path) the messages the server may
send, the client frames it takes, and for each client frame type the answers its operation declares
(`reply`). `FrameRecorder` is instrumentation, not a mock: it wraps Channels' websocket send and receive
path, so the real consumer still parses, routes, answers and pushes, and it checks each frame on the way:

- every frame the server sends on a documented socket must match one of that socket's messages; an answer
  to a command must be one of the answers that command's operation declares, and carry the command's
  `ref` (`null` when it had none or an invalid one);
- every client frame the server accepted (answered without an `error` frame) must match its message, so
  the document is never stricter than the server.

The root conftest installs a recorder around every test and fails the test at teardown on any drift.
Sockets the document does not describe (the staff map, `/ws/map/`) are not checked.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from channels.generic.websocket import AsyncWebsocketConsumer
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
# The base URI the document is registered under, so the `#/components/...` references inside message
# payloads resolve against the whole document.
_BASE_URI = "urn:rochdale:asyncapi"
_ANSWER_TYPES = frozenset({"result", "error"})
_MAX_REF_LENGTH = 64
_SHOWN_FRAME_CHARS = 300

# A decoded JSON value: the frames are whatever the wire carried, checked here rather than trusted.
Json = Any


@dataclass(frozen=True, eq=False)  # one instance per message of the document: compared by identity
class Message:
    """One message of the document: its component name, the `type` its payload fixes, its validator."""

    name: str
    frame_type: str
    validator: Draft7Validator

    def problems(self, frame: Json) -> list[str]:
        return [_describe(error) for error in sorted(self.validator.iter_errors(frame), key=str)]


@dataclass(frozen=True)
class Channel:
    address: str
    sent: tuple[Message, ...]
    received: dict[str, Message]
    answers: dict[str, tuple[Message, ...]]


@dataclass(frozen=True)
class Drift:
    """A frame that does not match the document."""

    address: str
    direction: str  # "server" (sent by the server) or "client" (accepted by the server)
    frame: str
    problems: tuple[str, ...]

    def __str__(self) -> str:
        shown = self.frame if len(self.frame) <= _SHOWN_FRAME_CHARS else self.frame[:_SHOWN_FRAME_CHARS] + "…"
        sender = "server sent" if self.direction == "server" else "server accepted"
        lines = "\n".join(f"    - {problem}" for problem in self.problems)
        return f"  {self.address}: the {sender} {shown}\n{lines}"


def _describe(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path) or "(the frame)"
    return f"{where}: {error.message}"


def _pointer(reference: str) -> list[str]:
    if not reference.startswith("#/"):
        raise ValueError(f"only local references are used in the document, not {reference!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in reference[2:].split("/")]


class FrameContract:
    """The document's channels, messages and answers, ready to check frames."""

    def __init__(self, document: dict[str, Json]) -> None:
        self.document = document
        self.registry: Registry = Registry().with_resource(
            _BASE_URI, Resource.from_contents(document, default_specification=DRAFT7)
        )
        self._messages: dict[str, Message] = {}
        self.channels: dict[str, Channel] = self._channels()

    @classmethod
    def from_text(cls, text: str) -> FrameContract:
        return cls(yaml.safe_load(text))

    def _follow(self, reference: str) -> tuple[str, dict[str, Json]]:
        """Follow a chain of `$ref`s from `reference`; the last pointer and the object it names."""
        node: Json = self.document
        for part in _pointer(reference):
            node = node[part]
        if isinstance(node, dict) and "$ref" in node:
            return self._follow(node["$ref"])
        return reference, node

    def _message(self, reference: str) -> Message:
        pointer, message = self._follow(reference)
        if pointer not in self._messages:
            frame_type = message["payload"]["properties"]["type"]["const"]
            validator = Draft7Validator({"$ref": f"{_BASE_URI}{pointer}/payload"}, registry=self.registry)
            self._messages[pointer] = Message(pointer.rsplit("/", 1)[-1], frame_type, validator)
        return self._messages[pointer]

    def _channels(self) -> dict[str, Channel]:
        sent: dict[str, list[Message]] = {}
        received: dict[str, dict[str, Message]] = {}
        answers: dict[str, dict[str, tuple[Message, ...]]] = {}
        for operation in self.document["operations"].values():
            channel_pointer, _ = self._follow(operation["channel"]["$ref"])
            messages = [self._message(ref["$ref"]) for ref in operation["messages"]]
            if operation["action"] == "send":
                sent.setdefault(channel_pointer, []).extend(messages)
                continue
            reply_refs = operation.get("reply", {}).get("messages", [])
            replies = tuple(self._message(ref["$ref"]) for ref in reply_refs)
            sent.setdefault(channel_pointer, []).extend(replies)
            for message in messages:
                received.setdefault(channel_pointer, {})[message.frame_type] = message
                answers.setdefault(channel_pointer, {})[message.frame_type] = replies
        channels = {}
        for key, channel in self.document["channels"].items():
            pointer = f"#/channels/{key}"
            unique_sent = tuple(dict.fromkeys(sent.get(pointer, [])))
            channels[channel["address"]] = Channel(
                channel["address"], unique_sent, received.get(pointer, {}), answers.get(pointer, {})
            )
        return channels

    def message(self, name: str) -> Message:
        """A message by its component name (`offer`, `driverError`, ...)."""
        return self._message(f"#/components/messages/{name}")

    def server_frame_problems(self, address: str, frame: Json, *, answering: Json = None) -> list[str]:
        """What is wrong with `frame` as a frame the server sends on `address`; [] when nothing.

        `answering` is the client frame (decoded) being handled when the server sent it, if any."""
        channel = self.channels[address]
        if not isinstance(frame, dict):
            return ["a frame is a JSON object"]
        frame_type = frame.get("type")
        command = answering.get("type") if isinstance(answering, dict) else None
        candidates = channel.sent
        if frame_type in _ANSWER_TYPES:
            candidates = channel.answers.get(command, channel.sent)
        matching = [message for message in candidates if message.frame_type == frame_type]
        if not matching:
            context = f" in answer to {command!r}" if command in channel.answers else ""
            return [f"{frame_type!r} is not a frame the document lets the server send on {address}{context}"]
        results = [message.problems(frame) for message in matching]
        problems = [] if any(not found for found in results) else min(results, key=len)
        if answering is not None and frame_type in _ANSWER_TYPES:
            expected_ref = _echoed_ref(answering)
            if frame.get("ref") != expected_ref:
                problems.append(f"ref: answers {expected_ref!r}, the frame carries {frame.get('ref')!r}")
        if problems and len(matching) > 1:
            names = ", ".join(message.name for message in matching)
            problems.insert(0, f"matches none of {names}; closest:")
        return problems

    def client_frame_problems(self, address: str, frame: Json) -> list[str]:
        """What is wrong with `frame` as a client frame the server took on `address`; [] when nothing."""
        channel = self.channels[address]
        frame_type = frame.get("type") if isinstance(frame, dict) else None
        message = channel.received.get(frame_type) if isinstance(frame_type, str) else None
        if message is None:
            return [f"{frame_type!r} is not a client frame the document lists on {address}"]
        return message.problems(frame)


def _echoed_ref(client_frame: Json) -> str | None:
    """The `ref` the server must echo: the client's, when it is a string of at most 64 characters."""
    ref = client_frame.get("ref") if isinstance(client_frame, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= _MAX_REF_LENGTH else None


@cache
def repository_contract() -> FrameContract:
    """docs/asyncapi.yaml, read once per test session."""
    return FrameContract.from_text(DOCUMENT_PATH.read_text())


@dataclass
class _Command:
    """The client frame a socket is handling, and whether the server refused it."""

    text: str | None
    frame: Json
    refused: bool = False


def _decode(text: str | None) -> Json:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class FrameRecorder:
    """Checks every frame of every documented socket a test opens; `drifts` lists what did not match."""

    contract: FrameContract = field(default_factory=repository_contract)
    drifts: list[Drift] = field(default_factory=list)
    server_frames: int = 0
    client_frames: int = 0
    _handling: weakref.WeakKeyDictionary[AsyncWebsocketConsumer, _Command] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FrameRecorder:
        """Wrap the send and receive path of Channels' websocket consumer for this test."""
        original_send = AsyncWebsocketConsumer.send
        original_receive = AsyncWebsocketConsumer.websocket_receive
        recorder = self

        async def send(
            consumer: AsyncWebsocketConsumer,
            text_data: str | None = None,
            bytes_data: bytes | None = None,
            close: bool = False,
        ) -> None:
            recorder.server_sent(consumer, text_data=text_data, bytes_data=bytes_data)
            await original_send(consumer, text_data=text_data, bytes_data=bytes_data, close=close)

        async def websocket_receive(consumer: AsyncWebsocketConsumer, message: dict[str, Json]) -> None:
            recorder.handling_started(consumer, message.get("text"))
            try:
                await original_receive(consumer, message)
            finally:
                recorder.handling_ended(consumer)

        monkeypatch.setattr(AsyncWebsocketConsumer, "send", send)
        monkeypatch.setattr(AsyncWebsocketConsumer, "websocket_receive", websocket_receive)
        return self

    def _address(self, consumer: AsyncWebsocketConsumer) -> str | None:
        path = (getattr(consumer, "scope", None) or {}).get("path")
        return path if path in self.contract.channels else None

    def server_sent(
        self, consumer: AsyncWebsocketConsumer, *, text_data: str | None, bytes_data: bytes | None
    ) -> None:
        address = self._address(consumer)
        if address is None or (text_data is None and bytes_data is None):
            return
        self.server_frames += 1
        command = self._handling.get(consumer)
        if text_data is None:
            binary = ("frames are JSON text, not binary",)
            self.drifts.append(Drift(address, "server", repr(bytes_data), binary))
            return
        frame = _decode(text_data)
        if frame is None:
            self.drifts.append(Drift(address, "server", text_data, ("not JSON",)))
            return
        if command is not None and isinstance(frame, dict) and frame.get("type") == "error":
            command.refused = True
        answering = None
        if command is not None:  # a frame that is not a JSON object has neither a type nor a ref
            answering = command.frame if isinstance(command.frame, dict) else {}
        problems = self.contract.server_frame_problems(address, frame, answering=answering)
        if problems:
            self.drifts.append(Drift(address, "server", text_data, tuple(problems)))

    def handling_started(self, consumer: AsyncWebsocketConsumer, text: str | None) -> None:
        if self._address(consumer) is not None:
            self._handling[consumer] = _Command(text, _decode(text))

    def handling_ended(self, consumer: AsyncWebsocketConsumer) -> None:
        command = self._handling.pop(consumer, None)
        address = self._address(consumer)
        if command is None or address is None or command.refused:
            return
        self.client_frames += 1
        problems = self.contract.client_frame_problems(address, command.frame)
        if problems:
            self.drifts.append(Drift(address, "client", command.text or "", tuple(problems)))

    def report(self) -> str:
        drifts = "\n".join(str(drift) for drift in self.drifts)
        return f"Socket frames drifted from docs/asyncapi.yaml:\n{drifts}"
