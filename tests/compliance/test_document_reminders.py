"""Reminders before a document's expiry: approved documents expiring in exactly the profile's reminder days
(30 and 7 in New York) reach the notification hook once a document and day, however often the sweep runs."""

from __future__ import annotations

import logging

import pytest

from backend.compliance.models import ExpiryReminder
from backend.compliance.services import expiry_reminders_send
from backend.compliance.tasks import send_expiry_reminders
from tests.compliance.document_builders import approved, in_days, upload
from tests.factories import DriverFactory, StaffFactory

pytestmark = pytest.mark.django_db


def test_documents_expiring_in_30_and_7_days_are_reminded_once(nyc, caplog):
    driver, staff = DriverFactory(), StaffFactory()
    in_30 = approved(driver, "insurance", staff, expires_on=in_days(30))
    in_7 = approved(driver, "tlc_driver_license", staff, expires_on=in_days(7))
    approved(driver, "inspection", staff, expires_on=in_days(29))  # no reminder day
    upload(driver, "background_check", expires_on=in_days(30))  # pending: nothing to remind of yet
    with caplog.at_level(logging.INFO, logger="backend.compliance.notify"):
        assert send_expiry_reminders() == 2
        assert expiry_reminders_send() == 0  # the same day again
    reminded = {(r.document_id, r.days_before) for r in ExpiryReminder.objects.all()}
    assert reminded == {(in_30.id, 30), (in_7.id, 7)}
    lines = [record.getMessage() for record in caplog.records if record.name == "backend.compliance.notify"]
    assert len(lines) == 2
    assert any("Commercial liability insurance" in line and "in 30 days" in line for line in lines)


def test_the_next_reminder_day_reminds_again(nyc):
    driver, staff = DriverFactory(), StaffFactory()
    document = approved(driver, "insurance", staff, expires_on=in_days(30))
    assert expiry_reminders_send() == 1
    assert expiry_reminders_send(today=in_days(23)) == 1  # 7 days before
    assert expiry_reminders_send(today=in_days(24)) == 0
    assert sorted(ExpiryReminder.objects.filter(document=document).values_list("days_before", flat=True)) == [
        7,
        30,
    ]


def test_a_failing_hook_is_tried_again_on_the_next_run(nyc, monkeypatch):
    from backend.compliance import notify

    driver, staff = DriverFactory(), StaffFactory()
    approved(driver, "insurance", staff, expires_on=in_days(7))
    real = notify.document_expiry_reminder

    def down(**kwargs):
        raise ConnectionError("mail server down")

    monkeypatch.setattr(notify, "document_expiry_reminder", down)
    with pytest.raises(ConnectionError):
        expiry_reminders_send()
    assert not ExpiryReminder.objects.exists()
    monkeypatch.setattr(notify, "document_expiry_reminder", real)
    assert expiry_reminders_send() == 1


def test_no_profile_no_reminders(settings):
    assert expiry_reminders_send() == 0


def test_a_hook_failing_for_one_document_does_not_hold_back_the_others(nyc, monkeypatch):
    # A delivery that fails for one driver (no address yet, a bounced mailbox) must not starve every
    # document the sweep reaches after it: those are reminded in the same run, the failed one next time.
    from backend.compliance import notify

    staff = StaffFactory()
    unreachable, reachable = DriverFactory(), DriverFactory()
    fine = [approved(reachable, kind, staff, expires_on=in_days(7)) for kind in ("insurance", "inspection")]
    failing = approved(unreachable, "insurance", staff, expires_on=in_days(7))  # the newest: reached first
    real = notify.document_expiry_reminder

    def flaky(*, document, **kwargs):
        if document.driver_id == unreachable.id:
            raise ConnectionError("no address for this driver")
        real(document=document, **kwargs)

    monkeypatch.setattr(notify, "document_expiry_reminder", flaky)
    with pytest.raises(ConnectionError):
        expiry_reminders_send()
    assert set(ExpiryReminder.objects.values_list("document_id", flat=True)) == {d.id for d in fine}
    monkeypatch.setattr(notify, "document_expiry_reminder", real)
    assert expiry_reminders_send() == 1
    assert ExpiryReminder.objects.filter(document=failing).count() == 1
