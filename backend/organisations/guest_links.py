"""The link a guest follows their ride with: signed, for one trip, good until a while after the trip ends.

A guest has no app and no password, so the link in their SMS is the credential: the trip's id signed with
the project's secret (django.core.signing, its own salt), so it cannot be guessed, forged or turned into
another trip's link. It is honoured until `GUEST_LINK_MARGIN` after the trip ended (completed, cancelled or
unfulfilled) and never longer than `GUEST_LINK_MAX_AGE` after it was made (a reservation is booked at most
a week ahead). What it shows is the view's choice (mobile_api/views_organisations.py): that trip's status,
window, the driver's first name and vehicle, and the driver's position only while the driver is on the way
or driving.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.core import signing
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backend.errors import NotFound, PermissionDenied

GUEST_LINK_SALT = "rochdale.organisations.guest-trip"
GUEST_LINK_MARGIN = timedelta(hours=2)
GUEST_LINK_MAX_AGE = timedelta(days=30)
# `.` rather than signing's `:`: the token sits in a URL path as it is.
_SEPARATOR = "."


class GuestLinkExpired(PermissionDenied):
    code = "guest_link_expired"
    default_message = gettext_lazy("This link has expired: the ride it follows ended a while ago.")


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=GUEST_LINK_SALT, sep=_SEPARATOR)


def guest_trip_token(*, trip_id: uuid.UUID) -> str:
    return _signer().sign(str(trip_id))


def guest_trip_id(*, token: str) -> uuid.UUID:
    """The trip a token names. Raises GuestLinkExpired (403) for a genuine token past GUEST_LINK_MAX_AGE,
    NotFound `guest_link_not_found` for one that was tampered with or made up."""
    try:
        value = _signer().unsign(token, max_age=GUEST_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise GuestLinkExpired() from exc
    except signing.BadSignature as exc:
        raise NotFound(_("No ride is followed at this link."), code="guest_link_not_found") from exc
    return uuid.UUID(value)


def guest_link_check_current(*, ended_at: datetime | None, now: datetime) -> None:
    """Raise GuestLinkExpired once the trip ended more than GUEST_LINK_MARGIN ago."""
    if ended_at is not None and now > ended_at + GUEST_LINK_MARGIN:
        raise GuestLinkExpired()
