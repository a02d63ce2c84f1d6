"""Must show (issue 17): an SOS reaches staff on the live map.

A staff member's browser has the live map's socket open (session cookie, as `/map/` opens it); the trip's
rider presses SOS over the API: the map socket receives the `sos` frame at once, every active staff account
gets a notification row, the governance audit log has the entry, and the alert row cannot be edited. A
double tap makes one alert. A driver raises one over their socket too, with or without a trip. Staff take
it on from the map (a CSRF-protected form) or the API, and the maps hear it. Nobody else's trip can be
used to raise one.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import DatabaseError, IntegrityError, transaction

from backend.asgi import application
from backend.notifications.models import Notification
from dispatch.models import SafetyAlert, SafetyAlertAction
from governance.models import AuditEntry
from tests.conftest import auth_client_for
from tests.dispatch.conftest import connect, send
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.mobile_api.builders import assigned_trip
from tests.safety.conftest import live_fix

pytestmark = pytest.mark.django_db(transaction=True)

SOS_BODY = {"client_key": "press-1", "position": {"lat": 40.7611, "lng": -73.9800}, "accuracy_m": 9}


async def _frame_of_type(socket: WebsocketCommunicator, frame_type: str, timeout: float = 10.0) -> dict:
    """The next frame of `frame_type` on the map socket (snapshots come every second in between)."""
    while True:
        frame = json.loads(await socket.receive_from(timeout=timeout))
        if frame["type"] == frame_type:
            return frame


async def _open_map(headers) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/map/", headers=headers)
    connected, code = await socket.connect()
    assert connected, code
    return socket


async def test_a_riders_sos_reaches_the_staff_live_map_and_every_staff_member(map_socket_headers, staff_user):
    rider, driver = await sync_to_async(RiderFactory)(), await sync_to_async(DriverFactory)()
    other_staff = await sync_to_async(StaffFactory)()
    retired = await sync_to_async(StaffFactory)(is_active=False)
    trip = await sync_to_async(assigned_trip)(rider, driver)
    map_socket = await _open_map(map_socket_headers)
    try:
        client = await sync_to_async(auth_client_for)(rider)
        answer = await sync_to_async(client.post)(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json")
        assert answer.status_code == 201, answer.content
        alert = answer.json()
        assert alert["trip_id"] == str(trip.id) and alert["status"] == "open"

        pushed = await _frame_of_type(map_socket, "sos")
        shown = pushed["alert"]
        assert shown["id"] == alert["id"] and shown["role"] == "rider" and shown["status"] == "open"
        assert shown["raised_by"] == {"id": str(rider.id), "name": rider.name, "phone": rider.phone}
        assert shown["position"] == {"lat": 40.7611, "lng": -73.98}
        assert shown["trip"]["driver"]["id"] == str(driver.id)
        plate = await sync_to_async(lambda: driver.driver_profile.active_vehicle.plate)()
        assert shown["trip"]["vehicle"]["plate"] == plate
        # The next snapshot lists it too: a map that missed the push still shows the alert.
        snapshot = await _frame_of_type(map_socket, "snapshot")
        assert [a["id"] for a in snapshot["alerts"]] == [alert["id"]]

        # A panicked double tap (or a retry) with the same key: the same alert, nobody alerted twice.
        again = await sync_to_async(client.post)(
            f"/api/v1/trips/{trip.id}/sos",
            {**SOS_BODY, "position": {"lat": 40.7612, "lng": -73.98}},
            format="json",
        )
        assert again.status_code == 200 and again.json()["id"] == alert["id"]
    finally:
        await map_socket.disconnect()

    assert await sync_to_async(SafetyAlert.objects.count)() == 1
    told = await sync_to_async(list)(
        Notification.objects.filter(event="safety_sos").values_list("user_id", flat=True)
    )
    assert set(told) == {staff_user.id, other_staff.id} and retired.id not in told
    assert rider.phone in (await sync_to_async(Notification.objects.filter(event="safety_sos").first)()).body
    entry = await sync_to_async(AuditEntry.objects.get)(kind="safety.sos_raised")
    assert entry.payload["alert_id"] == alert["id"] and entry.payload["role"] == "rider"
    assert entry.payload["trip_id"] == str(trip.id)


def test_an_alert_and_what_staff_did_about_it_cannot_be_edited_or_deleted():
    rider = RiderFactory()
    StaffFactory()
    trip = assigned_trip(rider)
    auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json")
    alert = SafetyAlert.objects.get()
    for attempt in (
        lambda: SafetyAlert.objects.filter(id=alert.id).update(client_key="edited"),
        lambda: SafetyAlert.objects.filter(id=alert.id).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            attempt()
    staff = StaffFactory()
    auth_client_for(staff).post(f"/api/v1/staff/safety/alerts/{alert.id}/acknowledge", {}, format="json")
    with pytest.raises(DatabaseError), transaction.atomic():
        SafetyAlertAction.objects.filter(alert_id=alert.id).update(note="rewritten")
    with pytest.raises(IntegrityError), transaction.atomic():
        SafetyAlertAction.objects.create(alert_id=alert.id, kind="acknowledged", by=staff)


def test_nobody_raises_an_sos_on_another_persons_trip():
    rider, driver = RiderFactory(), DriverFactory()
    trip = assigned_trip(rider, driver)
    StaffFactory()
    for outsider in (RiderFactory(), DriverFactory()):
        refused = auth_client_for(outsider).post(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json")
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "trip_not_found"
    assert (
        auth_client_for(driver).post(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json").status_code
        == 201
    )
    assert SafetyAlert.objects.get().role == "driver"
    # Without a trip, a rider with none under way and a driver who is offline have nothing to raise it on.
    for nobody in (RiderFactory(), DriverFactory()):
        refused = auth_client_for(nobody).post("/api/v1/sos", {"client_key": "k"}, format="json")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "sos_not_available"


async def test_a_driver_raises_an_sos_over_their_socket_with_their_last_fix(map_socket_headers):
    from dispatch.services import presence

    driver = await sync_to_async(DriverFactory)()
    await sync_to_async(StaffFactory)()
    socket = await connect(driver, "/ws/driver/")
    map_socket = await _open_map(map_socket_headers)
    try:
        offline = await send(socket, {"type": "sos", "client_key": "s-1"}, ref="sos-0")
        assert offline["type"] == "error" and offline["code"] == "sos_not_available"

        await sync_to_async(presence.presence_go_online)(driver_id=driver.id)
        await sync_to_async(live_fix)(driver, 40.7700, -73.9700)
        raised = await send(socket, {"type": "sos", "client_key": "s-1"}, ref="sos-1")
        assert raised["type"] == "result" and raised["alert"]["trip_id"] is None
        assert raised["alert"]["status"] == "open"
        shown = (await _frame_of_type(map_socket, "sos"))["alert"]
        assert shown["role"] == "driver" and shown["source"] == "socket" and shown["trip"] is None
        assert shown["position"] == {"lat": 40.77, "lng": -73.97} and shown["position_source"] == "last_fix"

        again = await send(
            socket, {"type": "sos", "client_key": "s-1", "lat": 40.0, "lng": -74.0}, ref="sos-2"
        )
        assert again["alert"]["id"] == raised["alert"]["id"]
        bad = await send(
            socket, {"type": "sos", "client_key": "s-2", "lat": 140.0, "lng": -74.0}, ref="sos-3"
        )
        assert bad["code"] == "invalid_frame"
    finally:
        await socket.disconnect()
        await map_socket.disconnect()
    assert await sync_to_async(SafetyAlert.objects.count)() == 1


async def test_staff_take_an_alert_on_and_every_map_hears_it(map_socket_headers, staff_user):
    rider = await sync_to_async(RiderFactory)()
    trip = await sync_to_async(assigned_trip)(rider)
    rider_client = await sync_to_async(auth_client_for)(rider)
    alert = (
        await sync_to_async(rider_client.post)(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json")
    ).json()
    map_socket = await _open_map(map_socket_headers)
    try:
        staff_client = await sync_to_async(auth_client_for)(staff_user)
        taken = await sync_to_async(staff_client.post)(
            f"/api/v1/staff/safety/alerts/{alert['id']}/acknowledge", {"note": "Calling her"}, format="json"
        )
        assert taken.status_code == 200 and taken.json()["status"] == "acknowledged"
        updated = await _frame_of_type(map_socket, "sos.updated")
        assert updated["alert"]["acknowledged"]["by"]["id"] == str(staff_user.id)
        assert updated["alert"]["acknowledged"]["note"] == "Calling her"
    finally:
        await map_socket.disconnect()
    # A second staff member acknowledging too is answered with the first one's acknowledgement.
    second = await sync_to_async(auth_client_for)(await sync_to_async(StaffFactory)())
    late = await sync_to_async(second.post)(
        f"/api/v1/staff/safety/alerts/{alert['id']}/acknowledge", {}, format="json"
    )
    assert late.json()["acknowledged"]["by"]["id"] == str(staff_user.id)
    # The rider is told someone is on it; they see no staff names.
    told = await sync_to_async(
        Notification.objects.filter(event="safety_sos_acknowledged", user_id=rider.id).exists
    )()
    assert told
    assert await sync_to_async(AuditEntry.objects.filter(kind="safety.sos_acknowledged").count)() == 1


def test_staff_acknowledge_from_the_live_map_page_and_resolve_over_the_api(client, staff_user):
    rider = RiderFactory()
    trip = assigned_trip(rider)
    alert_id = (
        auth_client_for(rider).post(f"/api/v1/trips/{trip.id}/sos", SOS_BODY, format="json").json()["id"]
    )
    client.force_login(staff_user)
    page = client.get("/map/")
    assert page.status_code == 200 and b'id="sos"' in page.content
    # The banner's button is a form: refused without the CSRF token, taken with it.
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    assert strict.post(f"/map/alerts/{alert_id}/acknowledge").status_code == 403
    strict.get("/map/")
    token = strict.cookies["csrftoken"].value
    done = strict.post(f"/map/alerts/{alert_id}/acknowledge", {"csrfmiddlewaretoken": token})
    assert done.status_code == 302 and done["Location"] == "/map/"

    api = auth_client_for(staff_user)
    listed = api.get("/api/v1/staff/safety/alerts").json()["results"]
    assert [(row["id"], row["status"]) for row in listed] == [(alert_id, "acknowledged")]
    assert api.get("/api/v1/staff/safety/alerts?status=open").json()["results"] == []
    assert (
        api.post(f"/api/v1/staff/safety/alerts/{alert_id}/resolve", {"note": ""}, format="json").status_code
        == 400
    )
    resolved = api.post(
        f"/api/v1/staff/safety/alerts/{alert_id}/resolve", {"note": "Rider safe at home"}, format="json"
    )
    assert (
        resolved.json()["status"] == "resolved"
        and resolved.json()["resolved"]["note"] == "Rider safe at home"
    )
    assert api.get("/api/v1/staff/safety/alerts").json()["results"] == []
    assert [row["id"] for row in api.get("/api/v1/staff/safety/alerts?status=all").json()["results"]] == [
        alert_id
    ]
    # Non-staff never see the alerts, nor take them on from the map.
    assert auth_client_for(rider).get("/api/v1/staff/safety/alerts").status_code == 403
    client.force_login(rider)
    assert client.post(f"/map/alerts/{alert_id}/acknowledge").status_code == 302  # to the sign-in page
    assert SafetyAlertAction.objects.filter(alert_id=alert_id).count() == 2
