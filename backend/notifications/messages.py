"""What each notification says, in the reader's language, and which category of messages it belongs to.

Texts are short enough for one or two SMS segments; the subject is the email's subject and the push's title.
Every text is marked for translation (gettext_lazy) and rendered under the recipient's language
(`render` runs inside `translation.override`, backend/notifications/services.py). Bodies are templates
over the context: `{name}` (str.format) or `%(name)s` placeholders, the translator keeps them as they are.
The context is what the sender passed (JSON values); a missing field renders as empty rather than failing a
delivery.

Each event belongs to a category (`CATEGORIES`; by its name's prefix when not listed) that the person's
preferences switch per channel (backend/notifications/preferences.py). `EVENT_CHANNELS` narrows the
channels an event may use at all (an offer is worth a push, never an email), and `TIMELY_EVENTS` are never
held for quiet hours: they are about a ride happening now, and late they say nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# event -> (email subject and push title, body).
TEXTS: dict[str, tuple[str | Promise, str | Promise]] = {
    "reservation_confirmed": (
        _("Your ride is booked"),
        _(
            "Rochdale: your ride on {pickup_local} (pickup between {window_start_local} and "
            "{window_end_local}) is booked. {link}"
        ),
    ),
    "trip_booked_for_you": (
        _("A ride was booked for you"),
        _(
            "Rochdale: {organisation} booked a ride for you, pickup {pickup_local} (between "
            "{window_start_local} and {window_end_local}). Follow it here: {link}"
        ),
    ),
    "ride_booked_for_you_now": (
        _("A ride is on its way to you"),
        _(
            "Rochdale: {organisation} booked a ride for you now; a driver is being found. Follow it here: "
            "{link}"
        ),
    ),
    "reservation_claimed": (
        _("Your driver is confirmed"),
        _(
            "Rochdale: {driver_name} will pick you up on {pickup_local} (between {window_start_local} and "
            "{window_end_local}). {link}"
        ),
    ),
    "reservation_reminder": (
        _("Your ride is coming up"),
        _(
            "Rochdale reminder: your ride is on {pickup_local}, pickup between {window_start_local} and "
            "{window_end_local}. {link}"
        ),
    ),
    "reservation_driver_reminder": (
        _("Your reserved ride is coming up"),
        _(
            "Rochdale reminder: you claimed a ride on {pickup_local}, pickup between {window_start_local} "
            "and {window_end_local} near {pickup_area}."
        ),
    ),
    "reservation_at_risk": (
        _("Head to your reserved pickup"),
        _(
            "Rochdale: your reserved pickup starts at {window_start_local}. Go online and head there now, "
            "or the ride will be offered to another driver in {grace_min} minutes."
        ),
    ),
    "reservation_redispatched": (
        _("Your reserved ride was reassigned"),
        _("Rochdale: the reserved ride on {pickup_local} is being offered to other drivers. {detail}"),
    ),
    "reservation_payment_declined": (
        _("Your booked ride was cancelled: card declined"),
        _(
            "Rochdale: your card could not be authorised for your ride on {pickup_local}, so it was "
            "cancelled. Book it again with another card in the app."
        ),
    ),
    "reservation_cancelled": (
        _("Your ride was cancelled"),
        _("Rochdale: your ride on {pickup_local} was cancelled. {detail}"),
    ),
    "driver_assigned": (
        _("Your driver is on the way"),
        _("Rochdale: {driver_name} is on the way in a {vehicle}. {link}"),
    ),
    "organisation_guest_invite": (
        _("An organisation asks to book rides for you"),
        _(
            "Rochdale: {organisation} asks to book rides for you on its account. Nothing is booked unless "
            "you accept: open the Rochdale app, Organisations, to accept or decline."
        ),
    ),
    "organisation_member_invite": (
        _("You are invited to an organisation"),
        _(
            "Rochdale: {organisation} invites you to join it as {role}. Open the Rochdale app, "
            "Organisations, to accept or decline; nothing changes unless you accept."
        ),
    ),
    # Issue 17 (docs/notifications.md "Events"): the ride as it happens, the receipt, offers, documents and
    # governance.
    "driver_on_the_way": (
        _("Your driver is on the way"),
        _("Rochdale: %(driver_name)s is on the way in a %(vehicle)s."),
    ),
    "driver_arriving": (
        _("Your driver is here"),
        _("Rochdale: %(driver_name)s is at your pickup in a %(vehicle)s."),
    ),
    "offer_while_away": (
        _("A ride is offered to you"),
        _(
            "Rochdale: a ride %(pickup_min)s min from you, fare %(fare)s. Open the app within %(timeout_s)s "
            "seconds to take it."
        ),
    ),
    "trip_receipt": (
        _("Your receipt: %(total)s"),
        _("Rochdale: your trip %(trip_short)s came to %(total)s. Your receipt is in the app."),
    ),
    "trip_receipt_updated": (
        _("Your receipt was updated"),
        _("Rochdale: a refund was made on trip %(trip_short)s. The updated receipt is in the app."),
    ),
    "document_expiring": (
        _("A document expires soon"),
        _(
            "Rochdale: your %(document)s expires on %(expires_on)s, in %(days)s days. Send the new one in "
            "the app before then to keep driving."
        ),
    ),
    "proposal_opened": (
        _("A new proposal to vote on"),
        _('Rochdale: members vote on "%(title)s" until %(closes_local)s. Read it and vote: %(link)s'),
    ),
    "proposal_passed": (
        _("A proposal passed"),
        _('Rochdale: "%(title)s" passed (%(yes)s yes, %(no)s no, %(abstain)s abstain). %(link)s'),
    ),
    "proposal_failed": (
        _("A proposal did not pass"),
        _('Rochdale: "%(title)s" did not pass (%(yes)s yes, %(no)s no, %(abstain)s abstain). %(link)s'),
    ),
    "election_called": (
        _("A board election is called"),
        _(
            'Rochdale: "%(title)s" elects %(seats)s board seat(s). Stand as a candidate until '
            "%(nominations_close_local)s. %(link)s"
        ),
    ),
    "ballot_open": (
        _("Your ballot is open"),
        _(
            'Rochdale: voting in "%(title)s" is open until %(voting_closes_local)s. Rank the candidates: '
            "%(link)s"
        ),
    ),
    "election_results": (
        _("The election is counted"),
        _('Rochdale: "%(title)s" is counted; elected: %(elected)s. The count and ballot record: %(link)s'),
    ),
    # Safety (docs/safety.md): to every active staff account, urgently, and back to the person who asked.
    "safety_sos": (
        _("SOS: someone asked the co-op for help"),
        _(
            "Rochdale SOS from the %(role)s %(name)s (%(phone)s), at %(position)s, trip %(trip_id)s. "
            "Open the live map and call them."
        ),
    ),
    "safety_sos_acknowledged": (
        _("The co-op has your SOS"),
        _("Rochdale: a staff member has your SOS and is on it. In danger, call the emergency number."),
    ),
}


# The categories a person switches channels for (GET /api/v1/me/notification-preferences), in the order
# the API lists them.
CATEGORY_NAMES: tuple[str, ...] = (
    "trips",
    "reservations",
    "offers",
    "money",
    "governance",
    "safety",
    "documents",
    "account",
)

# Events whose name's prefix does not say their category.
CATEGORIES: dict[str, str] = {
    "trip_booked_for_you": "reservations",
    "ride_booked_for_you_now": "trips",
    "driver_assigned": "trips",
    "driver_on_the_way": "trips",
    "driver_arriving": "trips",
    "trip_receipt": "money",
    "trip_receipt_updated": "money",
    "offer_while_away": "offers",
    "document_expiring": "documents",
    "proposal_opened": "governance",
    "proposal_passed": "governance",
    "proposal_failed": "governance",
    "election_called": "governance",
    "ballot_open": "governance",
    "election_results": "governance",
    "organisation_guest_invite": "account",
    "organisation_member_invite": "account",
}

_PREFIX_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("reservation_", "reservations"),
    ("trip_", "trips"),
    ("ride_", "trips"),
    ("driver_", "trips"),
    ("offer_", "offers"),
    ("payout_", "money"),
    ("refund_", "money"),
    ("dividend_", "money"),
    ("proposal_", "governance"),
    ("election_", "governance"),
    ("ballot_", "governance"),
    ("comment_", "governance"),
    ("sos", "safety"),
    ("safety_", "safety"),
    ("share_", "safety"),
    ("document_", "documents"),
)

PUSH_CHANNELS = frozenset({"web_push", "mobile_push"})
ALL_CHANNELS = frozenset({"sms", "email", "web_push", "mobile_push"})

# Events that may go on some channels only (any other event may use all four).
EVENT_CHANNELS: dict[str, frozenset[str]] = {
    # An offer lasts seconds: only a push can reach the driver in time.
    "offer_while_away": PUSH_CHANNELS,
    # A rider who asked for a ride now has the app: a push, not a text, tells them their driver is coming.
    "driver_on_the_way": PUSH_CHANNELS,
    "driver_arriving": PUSH_CHANNELS | {"sms"},
    # The receipt's email is the full receipt (HTML and PDF, dispatch/money/receipt_mail.py), sent by its
    # own task under the same preference; notify() carries the push.
    "trip_receipt": PUSH_CHANNELS,
    "trip_receipt_updated": PUSH_CHANNELS,
}

# About a ride happening now: sent through quiet hours, since late they say nothing.
TIMELY_EVENTS: frozenset[str] = frozenset(
    {
        "driver_assigned",
        "driver_on_the_way",
        "driver_arriving",
        "ride_booked_for_you_now",
        "offer_while_away",
        "reservation_reminder",
        "reservation_driver_reminder",
        "reservation_at_risk",
        "reservation_redispatched",
        "reservation_cancelled",
    }
)
TIMELY_CATEGORIES: frozenset[str] = frozenset({"trips", "offers", "safety"})


def category_of(event: str) -> str:
    """The preference category `event` belongs to ("account" for an event nobody classified)."""
    if event in CATEGORIES:
        return CATEGORIES[event]
    for prefix, category in _PREFIX_CATEGORIES:
        if event.startswith(prefix):
            return category
    return "account"


def channels_of(event: str) -> frozenset[str]:
    """The channels `event` may go out on at all."""
    return EVENT_CHANNELS.get(event, ALL_CHANNELS)


def is_timely(event: str) -> bool:
    """Whether `event` goes out through quiet hours (it is about a ride happening now)."""
    return event in TIMELY_EVENTS or category_of(event) in TIMELY_CATEGORIES


def render(event: str, context: Mapping[str, object]) -> tuple[str, str]:
    """(subject, body) for `event` in the active language; an event with no text of its own says only its
    name. Call it under `translation.override(<the reader's language>)`."""
    if event in TEXTS:
        subject, template = (str(text) for text in TEXTS[event])
    else:
        subject, template = "Rochdale", "Rochdale: " + event.replace("_", " ") + "."
    values: defaultdict[str, str] = defaultdict(
        str, {key: "" if value is None else str(value) for key, value in context.items()}
    )
    return _filled(subject, values), " ".join(_filled(template, values).split())


def _filled(template: str, values: defaultdict[str, str]) -> str:
    """`%(name)s` templates (the project's gettext convention) or `{name}` ones (the first events' texts)."""
    return template % values if "%(" in template else template.format_map(values)
