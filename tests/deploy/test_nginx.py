"""The shipped infra/deploy/nginx.conf run for real in front of TWO real servers, as compose runs it: `web`
(websockets) and `api` (REST) on their own ports. nginx itself says which one answered each request (the
test config's `upstreams` log, `$upstream_addr`), and a real driver socket is upgraded through /ws/.
The machinery (certificates, free ports, the shipped server blocks) is tests/e2e/test_nginx_client_ip.py's.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.e2e.test_nginx_client_ip import Nginx, client_from, nginx_in_front_of, register
from tests.live_server import LiveServer, start_asgi_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# One sign-up per client per hour: the second from one client is refused, which shows who the app took the
# client to be (issue 8: the last X-Forwarded-For entry, the one nginx appended).
BEHIND_ONE_PROXY = {"ROCHDALE_TRUSTED_PROXY_HOPS": "1", "ROCHDALE_REGISTER_RATE": "1/hour"}


@pytest.fixture
def proxy_and_servers(transactional_db) -> Iterator[tuple[Nginx, LiveServer, LiveServer]]:
    with (
        start_asgi_server(extra_env=BEHIND_ONE_PROXY) as web,
        start_asgi_server(extra_env=BEHIND_ONE_PROXY) as api,
        nginx_in_front_of(web, api_server=api) as proxy,
    ):
        yield proxy, web, api


def upstream_of(proxy: Nginx, uri_prefix: str) -> set[str]:
    return {upstream for uri, upstream in proxy.upstreams() if uri.startswith(uri_prefix)}


async def driver_socket_through(proxy: Nginx, token: str) -> dict:
    """A driver's socket opened the way the app does (a ticket from the API, then /ws/driver/) through
    nginx's TLS; the first answer to `online`."""
    no_verify = ssl.create_default_context()
    no_verify.check_hostname = False
    no_verify.verify_mode = ssl.CERT_NONE
    async with httpx.AsyncClient(base_url=proxy.https_url, verify=False, timeout=10) as http:
        answer = await http.post("/api/v1/ws-ticket", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.text
        ticket = answer.json()["ticket"]
    ws_url = proxy.https_url.replace("https://", "wss://") + f"/ws/driver/?ticket={ticket}"
    async with websockets.connect(ws_url, ssl=no_verify, open_timeout=10) as socket:
        await socket.send(json.dumps({"type": "online", "ref": "on"}))
        return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))


def test_websockets_reach_web_the_rest_reaches_api_and_the_client_is_the_last_hop(proxy_and_servers):
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.factories import DriverFactory

    proxy, web, api = proxy_and_servers
    token = str(RefreshToken.for_user(DriverFactory()).access_token)

    first = asyncio.run(driver_socket_through(proxy, token))
    with httpx.Client(base_url=proxy.https_url, verify=False, timeout=10) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})

    with client_from("127.0.0.1", proxy.https_url) as client:
        sign_ups = [register(client, i, forwarded_for=f"198.51.100.{i + 1}").status_code for i in range(2)]
    with client_from("127.0.0.2", proxy.https_url) as other_client:
        # Claiming to be the limited client does not make it so: nginx appends the address it saw.
        other = register(other_client, 9, forwarded_for="127.0.0.1").status_code

    assert first.get("ref") == "on", first  # the socket was upgraded and the consumer answered
    assert me.status_code == 200, proxy.log()
    assert upstream_of(proxy, "/ws/") == {f"127.0.0.1:{web.port}"}, proxy.upstreams()
    assert upstream_of(proxy, "/api/") == {f"127.0.0.1:{api.port}"}, proxy.upstreams()
    assert sign_ups == [201, 429], "a made-up X-Forwarded-For changed who the client is"
    assert other == 201


def test_the_port_80_probes_answer_whatever_host_the_balancer_sends(proxy_and_servers):
    proxy, _web, api = proxy_and_servers
    # A balancer sends its own address or a made-up name; neither is in ALLOWED_HOSTS.
    hosts = ("10.1.2.3", "lb-probe.internal")
    with httpx.Client(base_url=proxy.http_url, timeout=10) as client:
        answers = {
            path: [client.get(path, headers={"Host": host}) for host in hosts]
            for path in ("/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready")
        }
        # Any other plain-HTTP path still goes to HTTPS, and never to a server.
        redirect = client.get("/api/v1/me", headers={"Host": "rides.example.coop"})

    for path in ("/api/v1/health", "/api/v1/health/live"):
        assert [answer.status_code for answer in answers[path]] == [200, 200], proxy.log()
        assert {answer.json()["status"] for answer in answers[path]} == {"ok"}
    # Readiness names what fails; no Celery worker, beat or dispatch worker runs here, so it says so.
    # What matters for the proxy is that this is the app's answer, not the host check's 400.
    ready = answers["/api/v1/health/ready"]
    assert [answer.status_code for answer in ready] == [503, 503], [answer.text for answer in ready]
    assert "dispatch_worker.default" in ready[0].json()["failing"]
    assert upstream_of(proxy, "/api/v1/health") == {f"127.0.0.1:{api.port}"}, proxy.upstreams()
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == "https://rides.example.coop/api/v1/me"
