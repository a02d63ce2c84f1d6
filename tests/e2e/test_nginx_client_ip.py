"""The real client behind real Debian nginx with the shipped config, and without a proxy.

A made-up `X-Forwarded-For` must never change who the client is (docs/contract.md): behind the bundled nginx
(`ROCHDALE_TRUSTED_PROXY_HOPS=1`) the client is the address nginx saw, whatever the request claimed; with
no proxy (hops 0, the default) the header is not read at all. Measured on the code before the fix: 30 of 30
sign-ups passed the 20/hour limit and 60 wrong passwords never tripped the per-IP lockout.

nginx runs as its own master process on free ports with `infra/deploy/nginx.conf` copied verbatim except
for the upstream addresses, the listen ports (and the pid, log and temp paths, which live in the test's own
top-level config that includes the copy). A second loopback address (127.0.0.2) is a second real client.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.procs import free_port, kill_group, stop_group, wait_until
from tests.live_server import REPO, LiveServer, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHIPPED_NGINX_CONF = REPO / "infra" / "deploy" / "nginx.conf"
REGISTER_LIMIT = 20  # the shipped ROCHDALE_REGISTER_RATE, 20/hour
IP_FAILURE_LIMIT = 50  # the shipped ROCHDALE_SIGN_IN_IP_MAX_FAILURES
# The sign-in request rate (30/min per IP) would answer 429 `rate_limited` before the 50th failure; lift it
# so what trips is the lockout this test is about.
SERVER_ENV = {"ROCHDALE_SIGN_IN_RATE_IP": "1000/min", "ROCHDALE_SIGN_IN_MAX_FAILURES": "1000"}


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert found, "nginx is not installed: infra/bin/test.sh installs it (ensure_system_packages)"
    return found


def _substitute_once(text: str, pattern: str, replacement: str) -> str:
    changed, count = re.subn(pattern, replacement, text)
    assert count == 1, f"expected one {pattern!r} in infra/deploy/nginx.conf, found {count}"
    return changed


def shipped_conf_for(
    *, upstream_port: int, http_port: int, https_port: int, api_port: int | None = None
) -> str:
    """The shipped server blocks with only the upstreams and the listen ports changed: `web` on
    `upstream_port`, `api` on `api_port` (the same server when not given)."""
    conf = SHIPPED_NGINX_CONF.read_text()
    conf = _substitute_once(conf, r"server web:8000;", f"server 127.0.0.1:{upstream_port};")
    conf = _substitute_once(conf, r"server api:8000;", f"server 127.0.0.1:{api_port or upstream_port};")
    conf = _substitute_once(conf, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    return _substitute_once(conf, r"listen 443 ", f"listen 127.0.0.1:{https_port} ")


@dataclass
class Nginx:
    https_url: str
    directory: Path
    http_url: str = ""  # the shipped `listen 80` server (probes, redirects)

    def upstreams(self) -> list[tuple[str, str]]:
        """(request URI, upstream address) of every proxied request so far, in order: which server
        nginx chose, in its own words (the `upstreams` log the test config adds)."""
        path = self.directory / "upstreams.txt"
        lines = path.read_text().splitlines() if path.exists() else []
        return [tuple(line.split(" ", 1)) for line in lines]  # type: ignore[misc]

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.directory.glob("*.log")) if path.exists()
        )


@contextlib.contextmanager
def nginx_in_front_of(server: LiveServer, api_server: LiveServer | None = None) -> Iterator[Nginx]:
    """The shipped config in front of `server` (web, /ws/) and `api_server` (api; `server` too by default)."""
    with tempfile.TemporaryDirectory(prefix="rochdale-nginx-") as raw_directory:
        directory = Path(raw_directory)
        # nginx's workers (user nobody) buffer a large request body to a file under this directory, which
        # tempfile made readable by its owner only.
        directory.chmod(0o755)
        certs = directory / "certs"  # the shipped config names its certificates relative to its own dir
        certs.mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=rides.example.coop",
             "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        http_port, https_port = free_port(), free_port()
        (directory / "rochdale.conf").write_text(
            shipped_conf_for(
                upstream_port=server.port,
                http_port=http_port,
                https_port=https_port,
                api_port=api_server.port if api_server else None,
            )
        )
        (directory / "nginx.conf").write_text(
            f"""
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    log_format upstreams '$request_uri $upstream_addr';
    access_log {directory}/upstreams.txt upstreams;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/rochdale.conf;
}}
"""
        )
        command = [nginx_binary(), "-p", str(directory), "-c", str(directory / "nginx.conf")]
        checked = subprocess.run(
            [*command, "-e", str(directory / "error.log"), "-t"], capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, f"nginx -t refused the shipped config:\n{checked.stderr}"
        process = subprocess.Popen(
            [*command, "-e", str(directory / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proxy = Nginx(
            https_url=f"https://127.0.0.1:{https_port}",
            directory=directory,
            http_url=f"http://127.0.0.1:{http_port}",
        )
        try:

            def answers() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"nginx exited:\n{proxy.log()}")
                health = httpx.get(f"{proxy.https_url}/api/v1/health", verify=False, timeout=2)
                return health.status_code == 200

            wait_until(answers, timeout_s=20, what="nginx proxies /api/v1/health")
            yield proxy
        finally:
            stop_group(process, grace_s=5)
            kill_group(process)


def client_from(address: str, base_url: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address` (any 127.x address is this machine)."""
    return httpx.Client(
        base_url=base_url,
        transport=httpx.HTTPTransport(local_address=address, verify=False),
        timeout=10,
    )


def register(client: httpx.Client, index: int, *, forwarded_for: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/register",
        json={
            "phone": f"+1646555{index:04d}",
            "password": "a long pass phrase",
            "name": f"Client {index}",
            "role": "rider",
        },
        headers={"X-Forwarded-For": forwarded_for},
    )


def wrong_sign_in(client: httpx.Client, index: int, *, forwarded_for: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/token",
        json={"phone": f"+1718555{index:04d}", "password": "not the password"},
        headers={"X-Forwarded-For": forwarded_for},
    )


def made_up(index: int) -> str:
    """A different invented client for every request, the way an abuser would rotate them."""
    return f"198.51.100.{index % 250 + 1}, 203.0.113.{index // 250 + 1}"


@pytest.fixture
def server_behind_one_proxy(transactional_db) -> Iterator[LiveServer]:
    with start_asgi_server(extra_env={**SERVER_ENV, "ROCHDALE_TRUSTED_PROXY_HOPS": "1"}) as server:
        yield server


@pytest.fixture
def server_without_proxy(transactional_db) -> Iterator[LiveServer]:
    with start_asgi_server(extra_env={**SERVER_ENV, "ROCHDALE_TRUSTED_PROXY_HOPS": "0"}) as server:
        yield server


def test_sign_ups_through_nginx_meet_the_limit_whatever_x_forwarded_for_claims(server_behind_one_proxy):
    with nginx_in_front_of(server_behind_one_proxy) as proxy:
        with client_from("127.0.0.1", proxy.https_url) as client:
            statuses = [register(client, i, forwarded_for=made_up(i)).status_code for i in range(30)]
            limited = register(client, 99, forwarded_for="192.0.2.1")
        with client_from("127.0.0.2", proxy.https_url) as other_client:
            other = register(other_client, 100, forwarded_for=made_up(0))

    assert statuses == [201] * REGISTER_LIMIT + [429] * 10, proxy.log()
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code == 201, "another real client keeps its own allowance"


def test_wrong_passwords_through_nginx_trip_the_per_ip_lockout_whatever_x_forwarded_for_claims(
    server_behind_one_proxy,
):
    with nginx_in_front_of(server_behind_one_proxy) as proxy:
        with client_from("127.0.0.1", proxy.https_url) as client:
            answers = [wrong_sign_in(client, i, forwarded_for=made_up(i)) for i in range(60)]
        with client_from("127.0.0.2", proxy.https_url) as other_client:
            other = wrong_sign_in(other_client, 100, forwarded_for=made_up(0))

    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * IP_FAILURE_LIMIT + [429] * 10, proxy.log()
    locked = answers[-1].json()["error"]
    assert locked["code"] == "sign_in_locked" and locked["details"]["scope"] == "ip"
    assert other.status_code == 401, "another real client is not locked out"


def test_without_a_proxy_x_forwarded_for_is_ignored(server_without_proxy):
    with client_from("127.0.0.1", server_without_proxy.url) as client:
        sign_ups = [register(client, i, forwarded_for=made_up(i)).status_code for i in range(25)]
        failures = [wrong_sign_in(client, i, forwarded_for=made_up(i)).status_code for i in range(55)]
    with client_from("127.0.0.2", server_without_proxy.url) as other_client:
        other = register(other_client, 100, forwarded_for="127.0.0.1")

    assert sign_ups == [201] * REGISTER_LIMIT + [429] * 5
    assert failures == [401] * IP_FAILURE_LIMIT + [429] * 5
    assert other.status_code == 201, "claiming to be the limited client does not make you it"


def test_through_nginx_only_a_document_upload_may_be_larger_than_64_kib(server_behind_one_proxy):
    scan = b"%PDF-1.7\n" + b"0" * (1024 * 1024)  # a one-megabyte scan: well within the documents' 10 MiB
    with (
        nginx_in_front_of(server_behind_one_proxy) as proxy,
        client_from("127.0.0.1", proxy.https_url) as client,
    ):
        upload = client.post(
            "/api/v1/driver/documents",
            files={"file": ("insurance.pdf", scan, "application/pdf")},
            data={"kind": "insurance"},
        )
        other = client.post("/api/v1/trips", content=scan, headers={"Content-Type": "application/json"})
    assert upload.status_code == 401, proxy.log()  # it reached the app, which wants a token first
    assert other.status_code == 413  # nginx's own refusal: the app never saw it
