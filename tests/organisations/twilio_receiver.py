"""A local stand-in for Twilio's Messages endpoint: it records each request the SMS adapter
(backend/notifications/sms.py) makes, with its basic auth and form, and answers as Twilio does."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
TWILIO_FROM = "+12125550999"


@dataclass
class SentSms:
    path: str
    authorization: tuple[str, str] | None
    content_type: str
    form: dict[str, str]


@dataclass
class TwilioReceiver:
    url: str
    received: list[SentSms] = field(default_factory=list)
    answer_status: int = 201


def receiver_handler(receiver: TwilioReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            credentials = None
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                credentials = (user, password)
            receiver.received.append(
                SentSms(
                    path=self.path,
                    authorization=credentials,
                    content_type=self.headers.get("Content-Type", ""),
                    form={key: values[0] for key, values in parse_qs(raw).items()},
                )
            )
            status = receiver.answer_status
            body = (
                {"sid": f"SM{len(receiver.received):032d}", "status": "queued"}
                if status == 201
                else {"code": 21211, "message": "The 'To' number is not a valid phone number."}
            )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
