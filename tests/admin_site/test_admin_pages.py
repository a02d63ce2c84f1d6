"""Every admin screen a staff member opens after a ride reads as a person would want: amounts as money,
rows by name, points as "lat, lng", no EWKT, no object reprs, plural names right."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from backend.fares.admin_display import json_table, lat_lng, money
from dispatch.models import Tip, Trip
from tests.mobile_api.builders import completed_trip

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser(client: Client, staff_user) -> Client:
    client.force_login(staff_user)
    return client


@pytest.fixture
def ride(service_area) -> Trip:
    """A completed ride (its events, ledger entries and capture) and a $10.00 tip on it."""
    trip = completed_trip()
    Tip.objects.create(trip=trip, rider=trip.rider, driver=trip.driver, amount_minor=1000, currency="USD")
    return trip


def _unreadable(html: str) -> list[str]:
    """What a person should never have to read on an admin page."""
    found = re.findall(r"\w+ object \(\d+\)|\w+ object \([0-9a-f-]{36}\)|SRID=\d+", html)
    return found


def _admin_url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_changelist_and_change_page_reads_as_words(staff_browser: Client, ride: Trip) -> None:
    problems = []
    for model in admin.site._registry:
        listing = staff_browser.get(_admin_url(model, "changelist"))
        if listing.status_code != 200:
            problems.append(f"{model._meta.label} list: {listing.status_code}")
            continue
        problems += [f"{model._meta.label} list: {bad}" for bad in _unreadable(listing.content.decode())]
        row = model._default_manager.order_by("pk").first()
        if row is None:
            continue
        page = staff_browser.get(_admin_url(model, "change", row.pk))
        if page.status_code != 200:
            problems.append(f"{model._meta.label} change: {page.status_code}")
            continue
        problems += [f"{model._meta.label} change: {bad}" for bad in _unreadable(page.content.decode())]
    assert problems == []


def test_amounts_are_money_and_points_are_lat_lng(staff_browser: Client, ride: Trip) -> None:
    tips = staff_browser.get(_admin_url(Tip, "changelist")).content.decode()
    assert "$10.00" in tips
    trip_page = staff_browser.get(_admin_url(Trip, "change", ride.pk)).content.decode()
    assert money(ride.fare_minor, ride.currency) in trip_page
    assert lat_lng(ride.pickup) in trip_page
    assert "Fare minor" not in trip_page
    trips = staff_browser.get(_admin_url(Trip, "changelist")).content.decode()
    assert money(ride.fare_minor, "USD") in trips


def test_fare_breakdown_is_a_table(staff_browser: Client, ride: Trip) -> None:
    trip_page = staff_browser.get(_admin_url(Trip, "change", ride.pk)).content.decode()
    assert ride.fare_breakdown
    assert str(json_table(ride.fare_breakdown)) in trip_page
    assert '<table class="rochdale-json">' in trip_page


def test_plural_names_are_english(staff_browser: Client) -> None:
    index = staff_browser.get(reverse("admin:index")).content.decode()
    assert "Journal entries" in index and "Audit entries" in index
    assert "entrys" not in index.lower()


def test_money_formatting() -> None:
    assert money(1000, "USD") == "$10.00"
    assert money(-350, "USD") == "−$3.50"
    assert money(1000, "JPY") == "1000 JPY"
    assert money(1234, "CAD") == "12.34 CAD"
    assert money(None, "USD") == "-"


def test_json_is_escaped() -> None:
    table = str(json_table({"label": "<script>alert(1)</script>", "amount": 100}))
    assert "<script>" not in table and "&lt;script&gt;" in table


APPEND_ONLY = [
    "fares.JournalEntry",
    "fares.PaymentCapture",
    "fares.LedgerAccount",
    "dispatch.Tip",
    "dispatch.Payout",
    "dispatch.OrganisationInvoice",
    "dispatch.InvoicePayment",
    "governance.AuditEntry",
    "governance.DividendStatement",
    "governance.Member",
    "governance.Election",
    "governance.Proposal",
]


@pytest.mark.parametrize("label", APPEND_ONLY)
def test_money_ledger_vote_and_audit_rows_are_read_only(
    staff_browser: Client, staff_user, label: str
) -> None:
    from django.apps import apps
    from django.test import RequestFactory

    model = apps.get_model(label)
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = staff_user  # a superuser: only the admin itself can refuse
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, None)
    assert not model_admin.has_delete_permission(request, None)
    assert staff_browser.get(_admin_url(model, "add")).status_code == 403


def test_a_journal_entry_cannot_be_changed_or_deleted_through_the_admin(
    staff_browser: Client, ride: Trip
) -> None:
    from backend.fares.models import JournalEntry

    entry = JournalEntry.objects.filter(trip=ride).first()
    assert entry is not None
    page = staff_browser.get(_admin_url(JournalEntry, "change", entry.pk)).content.decode()
    assert 'name="_save"' not in page and "deletelink" not in page
    posted = staff_browser.post(_admin_url(JournalEntry, "change", entry.pk), {"memo": "edited"})
    assert posted.status_code == 403
    assert (
        staff_browser.post(_admin_url(JournalEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403
    )
    entry.refresh_from_db()
    assert entry.memo != "edited"


def test_approving_a_driver_goes_through_the_service(staff_browser: Client, staff_user) -> None:
    from backend.accounts.models import DriverProfile, DriverStatus
    from tests.factories import DriverFactory

    pending = DriverFactory(profile__status=DriverStatus.PENDING)
    response = staff_browser.post(
        _admin_url(DriverProfile, "changelist"),
        {"action": "approve_drivers", "_selected_action": [str(pending.driver_profile.pk)]},
    )
    assert response.status_code == 302
    profile = DriverProfile.objects.get(user=pending)
    # What driver_approve records, and a plain save would not: who approved and when.
    assert profile.status == DriverStatus.APPROVED
    assert profile.approved_by == staff_user and profile.approved_at is not None


def test_every_list_loads_the_stylesheet_that_keeps_ids_on_one_line(
    staff_browser: Client, ride: Trip
) -> None:
    from django.contrib.staticfiles import finders

    with open(finders.find("admin_site/admin.css")) as stylesheet:
        assert "white-space: nowrap" in stylesheet.read()
    for page in (_admin_url(Trip, "changelist"), _admin_url(Trip, "change", ride.pk)):
        assert "admin_site/admin.css" in staff_browser.get(page).content.decode()
