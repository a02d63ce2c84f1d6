"""Staff edit service areas as WKT text in the admin: no map widget, nothing fetched from the network."""

from __future__ import annotations

import re

import pytest

from dispatch.models import ServiceArea
from tests.mobile_api.builders import completed_trip

pytestmark = pytest.mark.django_db

SQUARE = "MULTIPOLYGON(((-74.1 40.6, -73.8 40.6, -73.8 40.9, -74.1 40.9, -74.1 40.6)))"


@pytest.fixture
def staff_browser(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_service_area_form_loads_nothing_from_the_network(staff_browser):
    response = staff_browser.get("/admin/dispatch/servicearea/add/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<textarea" in html and 'name="area"' in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
    assert "openlayers" not in html.lower() and "ol.js" not in html


def test_staff_draw_a_service_area_as_wkt(staff_browser):
    response = staff_browser.post(
        "/admin/dispatch/servicearea/add/", {"name": "Manhattan", "area": SQUARE, "is_active": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    area = ServiceArea.objects.get(name="Manhattan")
    assert area.area.srid == 4326 and area.area.num_geom == 1
    edit = staff_browser.get(f"/admin/dispatch/servicearea/{area.id}/change/")
    assert "MULTIPOLYGON" in edit.content.decode()


def test_trips_are_read_only_in_the_admin(staff_browser, service_area):
    trip = completed_trip()
    assert staff_browser.get("/admin/dispatch/trip/").status_code == 200
    page = staff_browser.get(f"/admin/dispatch/trip/{trip.id}/change/")
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    assert staff_browser.get("/admin/dispatch/trip/add/").status_code == 403


def test_staff_see_failed_notifications_in_the_admin_and_cannot_change_them(staff_browser):
    from backend.notifications.models import Notification, NotificationStatus
    from tests.factories import RiderFactory

    rider = RiderFactory()
    failed = Notification.objects.create(
        user=rider,
        event="reservation_reminder",
        channel="sms",
        to=rider.phone,
        body="Rochdale reminder",
        status=NotificationStatus.FAILED,
        attempts=6,
        last_error="twilio: HTTP 400 code 21211: invalid To",
    )
    listing = staff_browser.get("/admin/notifications/notification/?status__exact=failed")
    assert listing.status_code == 200 and "invalid To" in listing.content.decode()
    page = staff_browser.get(f"/admin/notifications/notification/{failed.id}/change/")
    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    assert staff_browser.get("/admin/notifications/notification/add/").status_code == 403
