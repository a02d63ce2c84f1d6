"""What riders are told about rides booked ahead or booked for them, and the link a guest follows a ride at.

`reservation_context` is what every reservation message says of its trip (its times in the co-op's local
time, and the trip link when someone else booked it). `rider_told_of_booking` tells a rider that their
organisation booked a ride for them (a coordinator, its API key, or a recurring ride it set up: docs/
organisations.md); `driver_assigned_notify` tells them a driver is on the way to a ride booked ahead or
booked for them (an app user who asked for a ride now watches the app instead). The link is the guest's one
credential (backend/organisations/guest_links.py), made absolute with `ROCHDALE_PUBLIC_URL` so a beat task
with no request in hand writes the same link as a view.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from backend.notifications.services import notify
from backend.organisations.guest_links import guest_trip_token
from dispatch.models import Trip


def guest_trip_link(trip: Trip) -> str:
    """The absolute address a guest follows `trip` at."""
    path = reverse("guest-trip", kwargs={"token": guest_trip_token(trip_id=trip.id)})
    return settings.ROCHDALE_PUBLIC_URL.rstrip("/") + path


def booked_for_rider(trip: Trip) -> bool:
    """Someone other than the rider booked it (a coordinator or an organisation's API key)."""
    return trip.booked_by_id is not None or trip.booked_by_key_id is not None


def reservation_context(trip: Trip) -> dict[str, object]:
    """What a notification about a reservation says of it: its times in the co-op's local time, and the
    link to follow it when someone else booked it for the rider."""
    local = timezone.get_default_timezone()

    def clock(moment: datetime | None) -> str:
        return moment.astimezone(local).strftime("%H:%M") if moment else ""

    return {
        "trip_id": str(trip.id),
        "pickup_local": trip.scheduled_for.astimezone(local).strftime("%a %d %b %H:%M")
        if trip.scheduled_for
        else "",
        "window_start_local": clock(trip.pickup_window_start),
        "window_end_local": clock(trip.pickup_window_end),
        "link": guest_trip_link(trip) if booked_for_rider(trip) else "",
    }


def rider_told_of_booking(*, trip: Trip) -> None:
    """Tell the trip's rider, once, after commit, that their organisation booked it: `trip_booked_for_you`
    for a ride booked ahead, `ride_booked_for_you_now` for one requested now."""
    context = {
        **reservation_context(trip),
        "organisation": trip.organisation.name if trip.organisation_id else "",
        "link": guest_trip_link(trip),
    }
    notify(
        user_id=trip.rider_id,
        event="trip_booked_for_you" if trip.scheduled_for else "ride_booked_for_you_now",
        context=context,
        dedup_key=f"booked_for_you:{trip.id}",
    )


def driver_assigned_notify(*, trip: Trip) -> None:
    """Tell the rider that their driver is on the way (once): `driver_assigned` on every channel for a ride
    booked ahead or booked for them; `driver_on_the_way`, by push only, to a rider who asked for a ride now
    (their app shows it, unless it is in the background)."""
    ride_now_in_app = trip.scheduled_for is None and not booked_for_rider(trip)
    vehicle = trip.vehicle
    notify(
        user_id=trip.rider_id,
        event="driver_on_the_way" if ride_now_in_app else "driver_assigned",
        context={
            **reservation_context(trip),
            "driver_name": trip.driver.name.split(" ")[0] if trip.driver_id else "",
            "vehicle": f"{vehicle.make} {vehicle.model} ({vehicle.plate})" if vehicle else "",
        },
        dedup_key=f"driver_assigned:{trip.id}",
    )
