"""Local stand-ins for the push services, on 127.0.0.1 and free ports, checking what the real ones check.

- `WebPushService`: a browser's push service. It verifies the VAPID JWT (ES256) against the public key the
  request's Authorization header carries (`vapid t=..., k=...`), checks `aud` (its own origin), `exp`
  (future, at most 24 h on) and `sub`, and decrypts the aes128gcm body with the browser's private key and
  auth secret (made here as a browser makes them: `BrowserSubscription`).
- `FcmService`: Google's OAuth token endpoint (a JWT-bearer assertion signed with the service account's
  RSA key, checked against its public key) and the FCM HTTP v1 send endpoint (the access token it issued).
- `ApnsService`: APNs over HTTP/2 (h2c, prior knowledge): the provider JWT (ES256, `kid`, `iss`) checked
  against the team's public key, the topic and push type, the device token in the path.

Each answers what the test queues in `statuses` (then its success answer), and keeps what it accepted.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class BrowserSubscription:
    """What a browser makes when a page subscribes: a P-256 key pair and a 16-byte auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def to_json(self) -> dict[str, object]:
        """As `PushSubscription.toJSON()` gives it to the page."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


class _Server:
    """A threaded HTTP/1.1 server whose requests go to `handle(method, path, headers, body)`."""

    def __init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, answer = receiver.handle(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.attempts = 0
        self.problems: list[str] = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> _Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _queued_status(self) -> int | None:
        with self.lock:
            self.attempts += 1
            return self.statuses.pop(0) if self.statuses else None

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError


class WebPushService(_Server):
    """A browser's push service: endpoints `/push/{id}`, one per subscription made with `subscribe()`."""

    def __init__(self, *, expected_subject: str) -> None:
        super().__init__()
        self.expected_subject = expected_subject
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.received: list[dict[str, object]] = []  # the decrypted payloads, with the headers checked
        self.vapid_keys: list[str] = []

    def subscribe(self) -> BrowserSubscription:
        subscription = BrowserSubscription(endpoint=f"{self.origin}/push/{uuid.uuid4().hex}")
        self.subscriptions[subscription.endpoint.rsplit("/", 1)[1]] = subscription
        return subscription

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        lower = {name.lower(): value for name, value in headers.items()}
        subscription = self.subscriptions.get(path.rsplit("/", 1)[-1])
        if subscription is None:
            return 404, {}, b"no such subscription"
        try:
            claims, public_key = self._verify_vapid(lower.get("authorization", ""))
        except (ValueError, jwt.PyJWTError) as exc:
            self.problems.append(f"vapid: {exc}")
            return 401, {}, str(exc).encode()
        if lower.get("content-encoding") != "aes128gcm":
            self.problems.append(f"content-encoding {lower.get('content-encoding')!r}")
            return 400, {}, b"aes128gcm only"
        if "ttl" not in lower:
            self.problems.append("no TTL header")
            return 400, {}, b"TTL required"
        plaintext = http_ece.decrypt(
            body,
            private_key=subscription.private_key,
            auth_secret=subscription.auth_secret,
            version="aes128gcm",
        )
        status = self._queued_status()
        if status is not None:
            return status, {}, b"queued refusal"
        with self.lock:
            self.vapid_keys.append(public_key)
            self.received.append(
                {
                    "endpoint": subscription.endpoint,
                    "claims": claims,
                    "ttl": lower["ttl"],
                    **json.loads(plaintext),
                }
            )
        return 201, {"Location": f"{self.origin}/message/{uuid.uuid4().hex}"}, b""

    def _verify_vapid(self, authorization: str) -> tuple[dict[str, object], str]:
        """RFC 8292: `vapid t=<JWT>, k=<public key>`; the JWT must verify against k."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"authorization scheme {scheme!r}, not vapid")
        values = dict(part.strip().split("=", 1) for part in params.split(","))
        token, key = values["t"], values["k"]
        point = b64url_decode(key)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        claims = jwt.decode(
            token,
            public,
            algorithms=["ES256"],
            audience=self.origin,
            options={"require": ["aud", "exp", "sub"]},
        )
        if claims["exp"] > time.time() + 24 * 3600:
            raise ValueError("exp more than 24 hours ahead")
        if claims["sub"] != self.expected_subject:
            raise ValueError(f"sub {claims['sub']!r}")
        return claims, key


@dataclass
class ServiceAccount:
    """A Google service account's JSON key as the console gives it, with its token_uri on `token_uri`."""

    token_uri: str
    project_id: str = "rochdale-test"
    private_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def info(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": f"push@{self.project_id}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": self.token_uri,
        }


class FcmService(_Server):
    """Google's OAuth token endpoint (`/token`) and FCM's v1 send endpoint, on one local server."""

    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self) -> None:
        super().__init__()
        self.account = ServiceAccount(token_uri=f"{self.origin}/token")
        self.tokens_issued: list[str] = []
        self.received: list[dict[str, object]] = []
        self.unregistered: set[str] = set()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        lower = {name.lower(): value for name, value in headers.items()}
        if path == "/token":
            return self._token(body)
        if path != f"/v1/projects/{self.account.project_id}/messages:send":
            return 404, {}, b"not here"
        bearer = lower.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens_issued:
            self.problems.append("send without an issued access token")
            return (
                401,
                {"Content-Type": "application/json"},
                json.dumps({"error": {"status": "UNAUTHENTICATED"}}).encode(),
            )
        message = json.loads(body)["message"]
        if message["token"] in self.unregistered:
            error = {
                "error": {"code": 404, "status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}
            }
            return 404, {"Content-Type": "application/json"}, json.dumps(error).encode()
        status = self._queued_status()
        if status is not None:
            return (
                status,
                {"Content-Type": "application/json"},
                json.dumps({"error": {"status": "UNAVAILABLE"}}).encode(),
            )
        with self.lock:
            self.received.append(message)
        name = f"projects/{self.account.project_id}/messages/{uuid.uuid4().int % 10**16}"
        return 200, {"Content-Type": "application/json"}, json.dumps({"name": name}).encode()

    def _token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        try:
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                raise ValueError(f"grant_type {form.get('grant_type')!r}")
            claims = jwt.decode(
                form["assertion"],
                self.account.private_key.public_key(),
                algorithms=["RS256"],
                # google-auth addresses the assertion to Google's token endpoint whatever token_uri says,
                # and Google checks exactly that.
                audience="https://oauth2.googleapis.com/token",
            )
            if claims.get("scope") != self.SCOPE or claims.get("iss") != self.account.info()["client_email"]:
                raise ValueError(f"claims {claims}")
        except (KeyError, ValueError, jwt.PyJWTError) as exc:
            self.problems.append(f"token: {exc}")
            return 400, {"Content-Type": "application/json"}, b'{"error": "invalid_grant"}'
        token = f"ya29.{uuid.uuid4().hex}"
        with self.lock:
            self.tokens_issued.append(token)
        answer = {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


class ApnsService:
    """APNs over HTTP/2 with prior knowledge: `POST /3/device/{token}` with a provider JWT."""

    def __init__(
        self, *, team_id: str = "TEAM123456", key_id: str = "KEY1234567", topic: str = "coop.rochdale.app"
    ):
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.key_pem = self.signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.statuses: list[tuple[int, str]] = []
        self.unregistered: set[str] = set()
        self.received: list[dict[str, object]] = []
        self.problems: list[str] = []
        self.attempts = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> ApnsService:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.running = False
        self.listener.close()

    def _accept(self) -> None:
        while self.running:
            try:
                sock, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, dict[str, object]] = {}
        with sock:
            while True:
                try:
                    data = sock.recv(65535)
                except OSError:
                    return
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = {"headers": dict(event.headers), "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = streams.pop(event.stream_id)
                        status, headers, body = self._answer(request["headers"], request["body"])
                        conn.send_headers(
                            event.stream_id,
                            [(":status", str(status)), *headers.items(), ("content-length", str(len(body)))],
                            end_stream=not body,
                        )
                        if body:
                            conn.send_data(event.stream_id, body, end_stream=True)
                sock.sendall(conn.data_to_send())

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.attempts += 1
        path = headers.get(":path", "")
        token = path.removeprefix("/3/device/")
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            return 404, {}, b'{"reason":"BadPath"}'
        try:
            bearer = headers["authorization"].removeprefix("bearer ")
            if jwt.get_unverified_header(bearer).get("kid") != self.key_id:
                raise ValueError("kid")
            claims = jwt.decode(bearer, self.signing_key.public_key(), algorithms=["ES256"])
            if claims.get("iss") != self.team_id or abs(claims["iat"] - time.time()) > 3600:
                raise ValueError(f"claims {claims}")
        except (KeyError, ValueError, jwt.PyJWTError) as exc:
            self.problems.append(f"provider token: {exc}")
            return 403, {}, b'{"reason":"InvalidProviderToken"}'
        if headers.get("apns-topic") != self.topic or headers.get("apns-push-type") != "alert":
            self.problems.append(f"headers {headers}")
            return 400, {}, b'{"reason":"TopicDisallowed"}'
        if token in self.unregistered:
            return (
                410,
                {},
                json.dumps({"reason": "Unregistered", "timestamp": int(time.time() * 1000)}).encode(),
            )
        with self.lock:
            queued = self.statuses.pop(0) if self.statuses else None
        if queued is not None:
            return queued[0], {}, json.dumps({"reason": queued[1]}).encode()
        apns_id = str(uuid.uuid4()).upper()
        with self.lock:
            self.received.append({"token": token, "headers": headers, **json.loads(body)})
        return 200, {"apns-id": apns_id}, b""
