"""Staff's reservation lists: upcoming ones, and those at risk of not being served in their window."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import CENTRE, driver_online_at
from tests.factories import DriverFactory, RiderFactory
from tests.scheduling.conftest import in_, make_reservation

pytestmark = pytest.mark.django_db

URL = "/api/v1/staff/reservations"


def test_staff_see_upcoming_reservations_soonest_first(area, rider, driver, staff_client):
    later = make_reservation(rider, scheduled_for=in_(2 * 86400), claimed_by=driver, claimed_at=in_(-60))
    sooner = make_reservation(rider, scheduled_for=in_(86400), reference="CC-42")

    body = staff_client.get(URL).json()

    assert [item["id"] for item in body["results"]] == [str(sooner.id), str(later.id)]
    first, second = body["results"]
    assert first["reference"] == "CC-42" and first["claimed_by"] is None and first["risks"] == []
    assert second["claimed_by"] == {"id": str(driver.id), "name": driver.name}
    assert first["rider"] == {"id": str(rider.id), "name": rider.name}


def test_at_risk_are_those_due_soon_with_no_driver_near_searching_or_with_a_warned_driver(
    area, rider, driver, staff_client
):
    from dispatch.models import Trip

    alone = make_reservation(rider, scheduled_for=in_(2400), release_at=in_(600))
    make_reservation(rider, scheduled_for=in_(86400), release_at=in_(80000))  # far off: not at risk
    # Ten kilometres south, with a free driver right there.
    covered = make_reservation(rider, scheduled_for=in_(2500), release_at=in_(700), lat=CENTRE[0] - 0.09)
    driver_online_at(DriverFactory(), covered.pickup.y, covered.pickup.x)
    searching = make_reservation(RiderFactory(), scheduled_for=in_(900))
    Trip.objects.filter(id=searching.id).update(status="requested")
    warned = make_reservation(
        rider, scheduled_for=in_(3000), claimed_by=driver, claimed_at=in_(-60), claim_warned_at=in_(-10)
    )

    body = staff_client.get(URL, {"status": "unclaimed_at_risk"}).json()

    assert {item["id"]: item["risks"] for item in body["results"]} == {
        str(searching.id): ["searching"],
        str(alone.id): ["no_driver_near"],
        str(warned.id): ["claimed_driver_warned"],
    }
    assert body["next"] is None


def test_only_staff_see_the_lists_and_the_status_must_be_known(
    area, rider_client, driver_client, staff_client
):
    for client in (rider_client, driver_client):
        refused = client.get(URL)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "staff_only"
    wrong = staff_client.get(URL, {"status": "everything"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "status_invalid"
