"""What riders and drivers are told while a ride happens (docs/notifications.md): the driver is at the
pickup, and an offer waits for a driver whose app has no live socket.

Each is one `notify()` in the caller's transaction (sent after commit, retried, never slowing the move that
caused it) with a dedup key, so a retried request or a re-run round never tells anyone twice. Which
channels: `driver_arriving` by push and SMS (the rider may be indoors with the app closed), an offer by
push only (backend/notifications/messages.py EVENT_CHANNELS); both go through quiet hours, being about a
ride happening now.
"""

from __future__ import annotations

from django.conf import settings

from backend.notifications.services import notify
from dispatch.models import DriverPresence, Offer, Trip
from dispatch.money.receipts import format_money


def driver_arriving_notify(*, trip: Trip) -> None:
    """Tell the rider their driver is at the pickup (once per trip)."""
    vehicle = trip.vehicle if trip.vehicle_id else None
    notify(
        user_id=trip.rider_id,
        event="driver_arriving",
        context={
            "trip_id": str(trip.id),
            "driver_name": trip.driver.name.split(" ")[0] if trip.driver_id else "",
            "vehicle": f"{vehicle.make} {vehicle.model} ({vehicle.plate})" if vehicle else "",
        },
        dedup_key=f"driver_arriving:{trip.id}",
    )


def offer_away_notify(*, offer: Offer, trip: Trip) -> None:
    """The offer frame went to the driver's sockets; when none is connected (the app is in the background,
    or its socket dropped within the presence grace), a push tells them the offer is waiting."""
    if DriverPresence.objects.filter(driver_id=offer.driver_id, connected=True).exists():
        return
    notify(
        user_id=offer.driver_id,
        event="offer_while_away",
        context={
            "offer_id": str(offer.id),
            "trip_id": str(trip.id),
            "pickup_min": max(1, round((offer.pickup_eta_s or 0) / 60)),
            "fare": format_money(trip.fare_estimate_minor, trip.currency),
            "timeout_s": max(0, int((offer.expires_at - offer.created_at).total_seconds())),
            # A push service keeps it no longer than the offer stands.
            "push_ttl_s": max(0, int((offer.expires_at - offer.created_at).total_seconds())),
            "link": settings.ROCHDALE_PUBLIC_URL.rstrip("/") + "/",
        },
        dedup_key=f"offer_while_away:{offer.id}",
    )
