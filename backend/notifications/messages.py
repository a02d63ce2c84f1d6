"""What each notification says: one short text per event, filled from the event's context.

Texts are short enough for one or two SMS segments. The context is what the sender passed (JSON values);
a missing field renders as empty rather than failing a delivery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

# event -> (email subject, body). Bodies are str.format templates over the context.
TEXTS: dict[str, tuple[str, str]] = {
    "reservation_confirmed": (
        "Your ride is booked",
        "Rochdale: your ride on {pickup_local} (pickup between {window_start_local} and {window_end_local}) "
        "is booked. {link}",
    ),
    "trip_booked_for_you": (
        "A ride was booked for you",
        "Rochdale: {organisation} booked a ride for you, pickup {pickup_local} "
        "(between {window_start_local} and {window_end_local}). Follow it here: {link}",
    ),
    "ride_booked_for_you_now": (
        "A ride is on its way to you",
        "Rochdale: {organisation} booked a ride for you now; a driver is being found. Follow it here: {link}",
    ),
    "reservation_claimed": (
        "Your driver is confirmed",
        "Rochdale: {driver_name} will pick you up on {pickup_local} (between {window_start_local} and "
        "{window_end_local}). {link}",
    ),
    "reservation_reminder": (
        "Your ride is coming up",
        "Rochdale reminder: your ride is on {pickup_local}, pickup between {window_start_local} and "
        "{window_end_local}. {link}",
    ),
    "reservation_driver_reminder": (
        "Your reserved ride is coming up",
        "Rochdale reminder: you claimed a ride on {pickup_local}, pickup between {window_start_local} and "
        "{window_end_local} near {pickup_area}.",
    ),
    "reservation_at_risk": (
        "Head to your reserved pickup",
        "Rochdale: your reserved pickup starts at {window_start_local}. Go online and head there now, or the "
        "ride will be offered to another driver in {grace_min} minutes.",
    ),
    "reservation_redispatched": (
        "Your reserved ride was reassigned",
        "Rochdale: the reserved ride on {pickup_local} is being offered to other drivers. {detail}",
    ),
    "reservation_payment_declined": (
        "Your booked ride was cancelled: card declined",
        "Rochdale: your card could not be authorised for your ride on {pickup_local}, so it was cancelled. "
        "Book it again with another card in the app.",
    ),
    "reservation_cancelled": (
        "Your ride was cancelled",
        "Rochdale: your ride on {pickup_local} was cancelled. {detail}",
    ),
    "driver_assigned": (
        "Your driver is on the way",
        "Rochdale: {driver_name} is on the way in a {vehicle}. {link}",
    ),
    "organisation_guest_invite": (
        "An organisation asks to book rides for you",
        "Rochdale: {organisation} asks to book rides for you on its account. Nothing is booked unless you "
        "accept: open the Rochdale app, Organisations, to accept or decline.",
    ),
    "organisation_member_invite": (
        "You are invited to an organisation",
        "Rochdale: {organisation} invites you to join it as {role}. Open the Rochdale app, Organisations, "
        "to accept or decline; nothing changes unless you accept.",
    ),
}


def render(event: str, context: Mapping[str, object]) -> tuple[str, str]:
    """(subject, body) for `event`; an event with no text of its own says only its name."""
    subject, template = TEXTS.get(event, ("Rochdale", "Rochdale: " + event.replace("_", " ") + "."))
    values: defaultdict[str, str] = defaultdict(
        str, {key: "" if value is None else str(value) for key, value in context.items()}
    )
    return subject, " ".join(template.format_map(values).split())
