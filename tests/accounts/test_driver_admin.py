"""Staff approve drivers in the admin through `driver_approve` (approver and time recorded); the status
itself cannot be edited there."""

from __future__ import annotations

import pytest

from backend.accounts.models import DriverProfile, DriverStatus
from tests.factories import DriverFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser(client, staff_user):
    client.force_login(staff_user)
    return client


def _change_form(profile: DriverProfile) -> dict[str, str]:
    """The change form as the browser would post it, with an approved status slipped in."""
    return {
        "user": str(profile.user_id),
        "license_number": profile.license_number,
        "status": DriverStatus.APPROVED,
        "created_at_0": profile.created_at.strftime("%Y-%m-%d"),
        "created_at_1": profile.created_at.strftime("%H:%M:%S"),
        "vehicles-TOTAL_FORMS": "0",
        "vehicles-INITIAL_FORMS": "0",
    }


def test_the_status_is_read_only_on_the_change_page(staff_browser):
    driver = DriverFactory(profile__status=DriverStatus.PENDING)
    page = staff_browser.get(f"/admin/accounts/driverprofile/{driver.id}/change/")
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()

    change_url = f"/admin/accounts/driverprofile/{driver.id}/change/"
    staff_browser.post(change_url, _change_form(driver.driver_profile))
    assert DriverProfile.objects.get(user=driver).status == DriverStatus.PENDING


def test_the_approve_action_records_who_approved_and_when(staff_browser, staff_user):
    pending = [DriverFactory(profile__status=DriverStatus.PENDING) for _ in range(2)]
    untouched = DriverFactory(profile__status=DriverStatus.PENDING)

    response = staff_browser.post(
        "/admin/accounts/driverprofile/",
        {"action": "approve_drivers", "_selected_action": [str(driver.id) for driver in pending]},
        follow=True,
    )

    assert response.status_code == 200
    assert "2 driver(s) approved." in response.content.decode()
    for driver in pending:
        profile = DriverProfile.objects.get(user=driver)
        assert profile.status == DriverStatus.APPROVED
        assert profile.approved_by == staff_user and profile.approved_at is not None
    assert DriverProfile.objects.get(user=untouched).status == DriverStatus.PENDING
