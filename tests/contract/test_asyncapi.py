"""docs/asyncapi.yaml is a valid AsyncAPI 3 document and describes the sockets the code serves.

Validity is the official parser's verdict (`@asyncapi/parser`, installed under infra/asyncapi/ by the
test command's `ensure_asyncapi_parser`). The rest checks what the parser does not: every example matches
its payload schema, every operation names messages of its own channel, and the documented client frames
and socket paths are exactly the ones the consumers route.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.contract.frames import DOCUMENT_PATH, FrameContract, repository_contract

REPO = Path(__file__).resolve().parents[2]
PARSER_DIR = REPO / "infra" / "asyncapi"
VALIDATOR = PARSER_DIR / "validate.mjs"


def _parse(document: Path) -> tuple[int, list[dict[str, str]], str]:
    """Run the official parser over `document`: exit status, diagnostics, stderr."""
    node = shutil.which("node")
    assert node is not None, (
        "Node.js is needed to validate docs/asyncapi.yaml (infra/bin/test.sh installs it)"
    )
    assert (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: run the tests through infra/bin/test.sh "
        "(ensure_asyncapi_parser), or `npm ci --ignore-scripts` in infra/asyncapi"
    )
    run = subprocess.run(
        [node, str(VALIDATOR), str(document)], capture_output=True, text=True, timeout=120, check=False
    )
    diagnostics = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return run.returncode, diagnostics, run.stderr


def test_the_document_is_valid_asyncapi_3_with_no_warnings() -> None:
    status, diagnostics, stderr = _parse(DOCUMENT_PATH)
    assert status == 0, (stderr, diagnostics)
    assert "valid AsyncAPI 3.0.0" in stderr
    # Only the note that 3.1 exists may remain; the contract asks for 3.0.
    serious = [d for d in diagnostics if d["severity"] in ("error", "warning")]
    assert serious == []


def test_the_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The check is real: a dangling reference and a missing required field each fail validation."""
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    document["operations"]["receiveOnline"]["reply"]["messages"][0]["$ref"] = (
        "#/channels/driver/messages/gone"
    )
    del document["info"]["version"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False))

    status, diagnostics, _ = _parse(broken)

    assert status == 1
    errors = {(d["code"], d["path"]) for d in diagnostics if d["severity"] == "error"}
    assert ("invalid-ref", "operations.receiveOnline.reply.messages.0.$ref") in errors
    assert any(path == "info" for _, path in errors)


def _documented_messages() -> dict[str, dict]:
    return yaml.safe_load(DOCUMENT_PATH.read_text())["components"]["messages"]


def test_every_example_matches_its_message() -> None:
    contract = repository_contract()
    checked = 0
    for name, message in _documented_messages().items():
        assert message.get("examples"), f"{name} has no example"
        for example in message["examples"]:
            assert contract.message(name).problems(example["payload"]) == [], (name, example["name"])
            checked += 1
    assert checked >= len(_documented_messages())


def test_every_schema_is_a_valid_json_schema() -> None:
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    for schema in document["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)
    for message in document["components"]["messages"].values():
        Draft7Validator.check_schema(message["payload"])


def test_every_operation_names_messages_of_its_own_channel() -> None:
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        references = [m["$ref"] for m in operation["messages"]]
        if "reply" in operation:
            assert operation["reply"]["channel"]["$ref"] == channel, name
            references += [m["$ref"] for m in operation["reply"]["messages"]]
        for reference in references:
            assert reference.startswith(f"{channel}/messages/"), (name, reference)


def test_the_documented_client_frames_are_exactly_what_each_socket_routes() -> None:
    from dispatch.consumers import DriverConsumer
    from mobile_api.consumers import RiderConsumer

    channels = repository_contract().channels
    assert set(channels["/ws/driver/"].received) == set(DriverConsumer().handlers())
    assert set(channels["/ws/rider/"].received) == set(RiderConsumer().handlers()) == set()


def test_every_frame_socket_the_server_routes_is_documented() -> None:
    from backend.routing import websocket_urlpatterns
    from dispatch.realtime import JsonFrameConsumer

    frame_sockets = {
        f"/{pattern.pattern!s}"
        for pattern in websocket_urlpatterns
        if issubclass(getattr(pattern.callback, "consumer_class", object), JsonFrameConsumer)
    }
    assert frame_sockets == set(repository_contract().channels) == {"/ws/driver/", "/ws/rider/"}


def test_the_error_codes_are_enums_and_every_error_message_uses_its_socket_enum() -> None:
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    schemas = document["components"]["schemas"]
    for code_schema in ("DriverErrorCode", "RiderErrorCode"):
        codes = schemas[code_schema]["enum"]
        assert codes and len(codes) == len(set(codes))
        for code in codes:  # each code is explained where it is listed
            assert f"`{code}`" in schemas[code_schema]["description"], code
    messages = document["components"]["messages"]
    assert messages["driverError"]["payload"]["properties"]["code"] == {
        "$ref": "#/components/schemas/DriverErrorCode"
    }
    assert messages["riderError"]["payload"]["properties"]["code"] == {
        "$ref": "#/components/schemas/RiderErrorCode"
    }


def test_the_contract_loads_every_channel_with_answers_for_each_command() -> None:
    contract = FrameContract.from_text(DOCUMENT_PATH.read_text())
    driver = contract.channels["/ws/driver/"]
    for frame_type, answers in driver.answers.items():
        answer_types = {message.frame_type for message in answers}
        assert "error" in answer_types, frame_type
        assert answer_types <= {"result", "error"}, frame_type
    assert {message.frame_type for message in driver.answers["location"]} == {"error"}


@pytest.mark.parametrize("address", ["/ws/driver/", "/ws/rider/"])
def test_each_socket_documents_its_handshake(address: str) -> None:
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    (channel,) = [c for c in document["channels"].values() if c["address"] == address]
    binding = channel["bindings"]["ws"]
    assert binding["query"]["required"] == ["ticket"]
    assert "Origin" in binding["headers"]["properties"]
    for rule in ("4401", "4403", "1013", "4429", "HTTP 403", "Origin"):
        assert rule in channel["description"], (address, rule)
