"""Data rights (issue 15, docs/compliance.md "Data rights"): a person's export of their own data, and their
erasure.

Both live here, in the trips layer, because a person's data spans every layer below it: the account
(backend/accounts), cards and payments (backend/cards, backend/fares), membership and governance
(governance), and trips, locations, ratings, tips and payouts (dispatch). Views only call these.

**Export** (`account_export_chunks`): one JSON document of everything the co-op holds about the caller and
nothing about anyone else beyond what a trip showed them (the other party's name and, to a rider, the
vehicle). Cards appear only as brand and last four digits, bank accounts masked, and a member's votes only
as receipts (that they voted and when): a member vote is a secret ballot, so even its voter is not told how
it went; a director's board votes are public by design and are listed with their choice. The driver's
location history is the one part that can be large, so the document is produced in chunks and streamed.

**Erasure** (`account_erase`): pseudonymisation, because the ledger, trip records, payouts and the
governance audit log must be kept for years (tax law, the regulator) and point at the user id; the
append-only tables (pgtrigger Protect) are never touched. What goes: the name, phone, email and password
(backend/accounts/erasure.py), free text written by or about the person on their trips (rating comments,
cancel reasons), location history beyond the first and last fix of each trip (what the fare was measured
between, as the retention job keeps), the driver's last known position, unused fare estimates, and saved
cards at Stripe. An erasure waits (409) while the person has an open trip, a current membership or
retained capital (share capital is repaid or kept by the bylaws at withdrawal: the member withdraws first),
or money owed either way (a personal ledger account not at zero, a charge or payout in flight, a card hold
not settled). The erasure itself is appended to the governance audit log, with ids only.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from backend.accounts import erasure
from backend.accounts.models import DriverProfile, ErasureRequest, ErasureStatus, User
from backend.cards.customers import payment_method_detach, payment_methods_list
from backend.cards.holds import cards_in_use
from backend.cards.models import CardHold, HoldStatus, StripeCustomer
from backend.compliance.models import Document
from backend.errors import Conflict, DomainError, NotFound
from backend.fares.ledger import balance_minor
from backend.fares.models import (
    AccountKind,
    CaptureStatus,
    LedgerAccount,
    PaymentCapture,
    Posting,
)
from backend.fares.money import money
from backend.notifications.data_rights import notification_settings_erase, notification_settings_export
from backend.notifications.models import Notification
from backend.organisations.models import (
    OrganisationGuest,
    OrganisationInvitation,
    OrganisationMembership,
)
from backend.timestamps import wire_timestamp
from dispatch.models import (
    DriverBankAccount,
    DriverPresence,
    FareEstimate,
    LocationFix,
    Offer,
    Payout,
    PayoutStatus,
    PresenceSession,
    Rating,
    RecurringRide,
    RecurringRideStatus,
    RiderSafetySettings,
    SafetyAlert,
    Tip,
    Trip,
    TripEvent,
    TripShareLink,
)
from dispatch.state import DRIVER_ACTIVE_STATUSES, OPEN_STATUSES, UPCOMING_STATUSES
from governance.audit import audit_append
from governance.models import (
    BallotReceipt,
    BoardSeat,
    Candidate,
    DividendStatement,
    Member,
    MemberStatus,
    Proposal,
    Vote,
    VoteReceipt,
)
from governance.selectors import capital_account_minor, share_paid_minor

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "rochdale.data-export/1"
_FIX_CHUNK = 2000


def _ts(moment: datetime | None) -> str | None:
    return wire_timestamp(moment) if moment is not None else None


def _place(point: Point | None) -> dict[str, float] | None:
    return None if point is None else {"lat": point.y, "lng": point.x}


def _money(amount_minor: int | None, currency: str) -> dict[str, object] | None:
    return None if amount_minor is None else dict(money(int(amount_minor), currency))


# --- Export -----------------------------------------------------------------------------------------------


def account_export_chunks(*, user_id: uuid.UUID) -> Iterator[str]:
    """The caller's data as one JSON document, in chunks. Everything but the location history is read
    now (so a refusal is raised here, before any byte is sent); the history is streamed from the database
    in batches as the chunks are taken. Only `user_id`'s own records are read."""
    user = User.objects.filter(id=user_id).first()
    if user is None:
        raise NotFound(gettext("No such account."), code="account_not_found")
    head = json.dumps(account_export_document(user=user), ensure_ascii=False)
    return _with_location_history(head, driver_id=user.id)


def _with_location_history(head: str, *, driver_id: uuid.UUID) -> Iterator[str]:
    # The document is a JSON object: reopen it before its closing brace to stream the location history.
    yield head[:-1] + ', "location_fixes": ['
    fixes = (
        LocationFix.objects.filter(driver_id=driver_id)
        .order_by("recorded_at", "id")
        .values_list("recorded_at", "point", "trip_id", "accuracy_m", "accepted")
    )
    batch: list[str] = []
    separator = ""
    for recorded_at, point, trip_id, accuracy_m, accepted in fixes.iterator(chunk_size=_FIX_CHUNK):
        fix = {
            "recorded_at": _ts(recorded_at),
            "place": _place(point),
            "trip_id": str(trip_id) if trip_id else None,
            "accuracy_m": accuracy_m,
            "accepted": accepted,
        }
        batch.append(separator + json.dumps(fix))
        separator = ", "
        if len(batch) >= _FIX_CHUNK:
            yield "".join(batch)
            batch = []
    yield "".join(batch) + "]}"


def account_export_document(*, user: User) -> dict[str, Any]:
    """Everything in the export but the location history (see `account_export_chunks`)."""
    return {
        "format": EXPORT_FORMAT,
        "generated_at": wire_timestamp(timezone.now()),
        "account": _account(user),
        "driver": _driver(user),
        "trips_as_rider": [_trip(trip, role="rider") for trip in _trips(rider_id=user.id)],
        "trips_as_driver": [_trip(trip, role="driver") for trip in _trips(driver_id=user.id)],
        "ratings_given": [
            {
                "trip_id": str(rating.trip_id),
                "as": rating.author_role,
                "stars": rating.stars,
                "comment": rating.comment,
                "created_at": _ts(rating.created_at),
            }
            for rating in Rating.objects.filter(author_id=user.id).order_by("created_at")
        ],
        # Ratings of the person by the other party of their trips; who wrote one is not said.
        "ratings_received": [
            {
                "trip_id": str(rating.trip_id),
                "stars": rating.stars,
                "comment": rating.comment,
                "created_at": _ts(rating.created_at),
            }
            for rating in Rating.objects.filter(
                Q(trip__rider_id=user.id, author_role="driver")
                | Q(trip__driver_id=user.id, author_role="rider")
            )
            .exclude(author_id=user.id)
            .order_by("created_at")
        ],
        "tips_given": [_tip(tip) for tip in Tip.objects.filter(rider_id=user.id).order_by("created_at")],
        "tips_received": [_tip(tip) for tip in Tip.objects.filter(driver_id=user.id).order_by("created_at")],
        "payments": _payments(user),
        "payouts": _payouts(user),
        "bank_accounts": [
            {
                "holder_name": account.holder_name,
                "account_type": account.account_type,
                "account_number": account.masked_account_number,
                "is_active": account.is_active,
                "created_at": _ts(account.created_at),
                "deactivated_at": _ts(account.deactivated_at),
            }
            for account in DriverBankAccount.objects.filter(driver_id=user.id).order_by("created_at")
        ],
        "presence_sessions": [
            {"started_at": _ts(started), "ended_at": _ts(ended)}
            for started, ended in PresenceSession.objects.filter(driver_id=user.id)
            .order_by("started_at")
            .values_list("started_at", "ended_at")
        ],
        "offers": [
            {
                "trip_id": str(offer.trip_id),
                "status": offer.status,
                "created_at": _ts(offer.created_at),
                "responded_at": _ts(offer.responded_at),
                "pickup_distance_m": offer.pickup_distance_m,
                "pickup_eta_s": offer.pickup_eta_s,
            }
            for offer in Offer.objects.filter(driver_id=user.id).order_by("created_at")
        ],
        "documents": _documents(user),
        "organisations": _organisations(user),
        "recurring_rides": [
            {
                "id": str(series.id),
                "status": series.status,
                "pickup": _place(series.pickup),
                "dropoff": _place(series.dropoff),
                "weekdays": list(series.weekdays),
                "pickup_time": series.pickup_time.isoformat(timespec="minutes"),
                "starts_on": series.starts_on.isoformat(),
                "until": series.until.isoformat() if series.until else None,
                "count": series.count,
                "created_at": _ts(series.created_at),
            }
            for series in RecurringRide.objects.filter(rider_id=user.id).order_by("created_at")
        ],
        "notifications": [
            {
                "event": note.event,
                "channel": note.channel,
                "to": note.to,
                "body": note.body,
                "status": note.status,
                "created_at": _ts(note.created_at),
                "sent_at": _ts(note.sent_at),
            }
            for note in Notification.objects.filter(user_id=user.id).order_by("created_at")
        ],
        "notification_settings": notification_settings_export(user_id=user.id),
        "safety": _safety(user),
        "governance": _governance(user),
        "erasure_requests": [
            {
                "id": str(request.id),
                "status": request.status,
                "requested_at": _ts(request.requested_at),
                "blockers": request.blockers,
                "completed_at": _ts(request.completed_at),
            }
            for request in ErasureRequest.objects.filter(user_id=user.id).order_by("requested_at")
        ],
    }


def _safety(user: User) -> dict[str, Any]:
    """The person's standing safety choices, the share links they made (when, until when, revoked: never
    the token, nor its digest, which would still open the trip while it runs) and the SOS alerts they
    raised, with when staff took each on and closed it."""
    chosen = RiderSafetySettings.objects.filter(rider_id=user.id).first()
    return {
        "settings": None
        if chosen is None
        else {"ride_pin_always": chosen.ride_pin_always, "updated_at": _ts(chosen.updated_at)},
        "share_links": [
            {
                "id": str(link.id),
                "trip_id": str(link.trip_id),
                "created_at": _ts(link.created_at),
                "expires_at": _ts(link.expires_at),
                "revoked_at": _ts(link.revoked_at),
            }
            for link in TripShareLink.objects.filter(created_by_id=user.id).order_by("created_at")
        ],
        "sos_alerts": [
            {
                "id": str(alert.id),
                "trip_id": str(alert.trip_id) if alert.trip_id else None,
                "role": alert.role,
                "source": alert.source,
                "raised_at": _ts(alert.raised_at),
                "position": _place(alert.position),
                "accuracy_m": alert.accuracy_m,
                "position_source": alert.position_source or None,
                "actions": [{"kind": action.kind, "at": _ts(action.at)} for action in alert.actions.all()],
            }
            for alert in SafetyAlert.objects.filter(raised_by_id=user.id)
            .prefetch_related("actions")
            .order_by("raised_at")
        ],
    }


def _organisations(user: User) -> dict[str, Any]:
    """The organisations the person is in, and those that book rides for them as a guest (with the name and
    phone the organisation knows them by)."""
    return {
        "memberships": [
            {"organisation": name, "role": role, "is_active": active, "created_at": _ts(created)}
            for name, role, active, created in OrganisationMembership.objects.filter(user_id=user.id)
            .order_by("created_at")
            .values_list("organisation__name", "role", "is_active", "created_at")
        ],
        "invitations": [
            {"organisation": name, "role": role, "created_at": _ts(created)}
            for name, role, created in OrganisationInvitation.objects.filter(phone=user.phone)
            .order_by("created_at")
            .values_list("organisation__name", "role", "created_at")
        ],
        "guest_of": [
            {"organisation": org, "name": name, "phone": phone, "created_at": _ts(created)}
            for org, name, phone, created in OrganisationGuest.objects.filter(user_id=user.id)
            .order_by("created_at")
            .values_list("organisation__name", "name", "phone", "created_at")
        ],
    }


def _account(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "phone": user.phone,
        "name": user.name,
        "email": user.email,
        "roles": user.base_roles,
        "is_active": user.is_active,
        "date_joined": _ts(user.date_joined),
    }


def _driver(user: User) -> dict[str, Any] | None:
    profile = DriverProfile.objects.filter(user_id=user.id).first()
    if profile is None:
        return None
    return {
        "license_number": profile.license_number,
        "status": profile.status,
        "approved_at": _ts(profile.approved_at),
        "created_at": _ts(profile.created_at),
        "vehicles": [
            {
                "id": str(vehicle.id),
                "plate": vehicle.plate,
                "make": vehicle.make,
                "model": vehicle.model,
                "year": vehicle.year,
                "seats": vehicle.seats,
                "wheelchair_accessible": vehicle.wheelchair_accessible,
                "is_active": vehicle.is_active,
                "created_at": _ts(vehicle.created_at),
            }
            for vehicle in profile.vehicles.order_by("created_at")
        ],
    }


def _documents(user: User) -> list[dict[str, Any]]:
    """The driver's compliance documents, as metadata: the files themselves are fetched through their
    short-lived signed links (docs/compliance.md), not copied into the export."""
    return [
        {
            "id": str(document.id),
            "subject": document.subject,
            "vehicle_id": str(document.vehicle_id) if document.vehicle_id else None,
            "kind": document.kind,
            "number": document.number,
            "issuer": document.issuer,
            "expires_on": document.expires_on.isoformat(),
            "status": document.status,
            "reason": document.reason,
            "content_type": document.content_type,
            "size_bytes": document.size_bytes,
            "created_at": _ts(document.created_at),
            "reviewed_at": _ts(document.reviewed_at),
        }
        for document in Document.objects.filter(driver_id=user.id).order_by("created_at")
    ]


def _trips(**owner: uuid.UUID) -> list[Trip]:
    return list(
        Trip.objects.filter(**owner).select_related("rider", "driver", "vehicle").order_by("requested_at")
    )


def _trip(trip: Trip, *, role: str) -> dict[str, Any]:
    currency = trip.currency
    document: dict[str, Any] = {
        "id": str(trip.id),
        "as": role,
        "status": trip.status,
        "pickup": _place(trip.pickup),
        "dropoff": _place(trip.dropoff),
        "wheelchair_accessible": trip.wheelchair_accessible,
        "requested_at": _ts(trip.requested_at),
        "assigned_at": _ts(trip.assigned_at),
        "arrived_at": _ts(trip.arrived_at),
        "started_at": _ts(trip.started_at),
        "completed_at": _ts(trip.completed_at),
        "ended_at": _ts(trip.ended_at),
        "fare_estimate": _money(trip.fare_estimate_minor, currency),
        "fare": _money(trip.fare_minor, currency),
        "fare_breakdown": trip.fare_breakdown,
        "driver_pay": _money(trip.driver_pay_minor, currency),
        "cancellation_fee": _money(trip.cancellation_fee_minor, currency),
        "cancelled_by": trip.cancelled_by,
        # A cancel reason is the canceller's own words: the other party's are not theirs to export.
        "cancel_reason": trip.cancel_reason if trip.cancelled_by == role else "",
        "distance_m": trip.measured_distance_m,
        "duration_s": trip.measured_duration_s,
        "route": list(trip.route_geometry.coords) if trip.route_geometry is not None else None,
    }
    # What the trip showed each party of the other: the driver's name and vehicle, the rider's name.
    if role == "rider":
        vehicle = trip.vehicle
        document["driver"] = (
            None
            if trip.driver is None
            else {
                "name": trip.driver.name,
                "vehicle": None
                if vehicle is None
                else {"plate": vehicle.plate, "make": vehicle.make, "model": vehicle.model},
            }
        )
    else:
        document["rider"] = {"name": trip.rider.name}
    return document


def _tip(tip: Tip) -> dict[str, Any]:
    return {
        "trip_id": str(tip.trip_id),
        "amount": _money(tip.amount_minor, tip.currency),
        "created_at": _ts(tip.created_at),
    }


def _payments(user: User) -> dict[str, Any]:
    captures = list(PaymentCapture.objects.filter(rider_id=user.id).order_by("created_at"))
    accounts = {account.id: account for account in LedgerAccount.objects.filter(owner_id=user.id)}
    postings = (
        Posting.objects.filter(account_id__in=list(accounts))
        .select_related("entry")
        .order_by("entry__created_at", "entry_id", "id")
    )
    entries: dict[uuid.UUID, dict[str, Any]] = {}
    for posting in postings:
        entry = posting.entry
        account = accounts[posting.account_id]
        document = entries.setdefault(
            entry.id,
            {
                "key": entry.key,
                "kind": entry.kind,
                "trip_id": str(entry.trip_id) if entry.trip_id else None,
                "created_at": _ts(entry.created_at),
                "currency": account.currency,
                # Only the lines on the person's own accounts: the rest of an entry is the co-op's books.
                "lines": [],
            },
        )
        document["lines"].append(
            {"account": account.kind, "debit": posting.debit_minor, "credit": posting.credit_minor}
        )
    return {
        "captures": [
            {
                "key": capture.key,
                "purpose": capture.purpose,
                "trip_id": str(capture.trip_id) if capture.trip_id else None,
                "amount": _money(capture.amount_minor, capture.currency),
                "provider": capture.provider,
                "status": capture.status,
                "created_at": _ts(capture.created_at),
                "succeeded_at": _ts(capture.succeeded_at),
            }
            for capture in captures
        ],
        "ledger_entries": list(entries.values()),
        "balances": [
            {"account": account.kind, "currency": account.currency, "balance": _account_balance(account)}
            for account in accounts.values()
        ],
        "card_holds": [
            {
                "trip_id": str(hold.trip_id) if hold.trip_id else None,
                "status": hold.status,
                "amount": _money(hold.amount_minor, hold.currency),
                "captured": _money(hold.captured_minor, hold.currency),
                "card": {"brand": hold.card_brand, "last4": hold.card_last4} if hold.card_last4 else None,
                "created_at": _ts(hold.created_at),
            }
            for hold in CardHold.objects.filter(rider_id=user.id).order_by("created_at")
        ],
        "saved_cards": _saved_cards(user),
    }


def _saved_cards(user: User) -> list[dict[str, Any]] | str:
    """The rider's saved cards as Stripe holds them (brand, last four, expiry), or why they are not listed."""
    if not StripeCustomer.objects.filter(rider_id=user.id).exists():
        return []
    if not user.is_active:
        return "detached at erasure"
    try:
        cards = payment_methods_list(rider_id=user.id)
    except DomainError as exc:  # Stripe unreachable or not set up: the rest of the export still stands
        logger.warning("data export: the saved cards of %s could not be read: %s", user.id, exc)
        return "unavailable: the card processor could not be reached"
    return [
        {
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "is_default": card.is_default,
        }
        for card in cards
    ]


def _account_balance(account: LedgerAccount) -> int:
    return balance_minor(
        kind=AccountKind(account.kind),
        owner_id=account.owner_id,
        currency=account.currency,
        code=account.code,
    )


def _payouts(user: User) -> list[dict[str, Any]]:
    return [
        {
            "week_start": payout.week_start.isoformat(),
            "status": payout.status,
            "method": payout.method,
            "amount": _money(payout.amount_minor, payout.currency),
            "payable": _money(payout.payable_minor, payout.currency),
            "tips": _money(payout.tips_minor, payout.currency),
            "bank_account": payout.bank_account.masked_account_number if payout.bank_account else None,
            "created_at": _ts(payout.created_at),
            "submitted_at": _ts(payout.submitted_at),
            "paid_at": _ts(payout.paid_at),
            "failed_at": _ts(payout.failed_at),
        }
        for payout in Payout.objects.filter(driver_id=user.id)
        .select_related("bank_account")
        .order_by("week_start")
    ]


def _governance(user: User) -> dict[str, Any]:
    members = list(Member.objects.filter(user_id=user.id).order_by("joined_at"))
    member_ids = [member.id for member in members]
    titles = dict(
        Proposal.objects.filter(
            Q(receipts__member_id__in=member_ids) | Q(votes__director_id__in=member_ids)
        ).values_list("id", "title")
    )
    return {
        "memberships": [
            {
                "member_id": str(member.id),
                "status": member.status,
                "share_price": _money(member.share_price_minor, member.currency),
                "share_paid": _money(share_paid_minor(member), member.currency),
                "capital_account": _money(capital_account_minor(member), member.currency),
                "joined_at": _ts(member.joined_at),
                "withdrawn_at": _ts(member.withdrawn_at),
            }
            for member in members
        ],
        "board_seats": [
            {
                "starts_at": _ts(seat.starts_at),
                "term_ends": _ts(seat.term_ends),
                "source": seat.source,
                "ended_at": _ts(seat.ended_at),
                "ended_reason": seat.ended_reason,
            }
            for seat in BoardSeat.objects.filter(member_id__in=member_ids).order_by("starts_at")
        ],
        "proposals_made": [
            {
                "id": str(p.id),
                "kind": p.kind,
                "title": p.title,
                "status": p.status,
                "opens_at": _ts(p.opens_at),
            }
            for p in Proposal.objects.filter(proposer_id__in=member_ids).order_by("opens_at")
        ],
        # That the member voted, and when: how a member vote went is a secret ballot, told to nobody.
        "vote_receipts": [
            {
                "proposal_id": str(r.proposal_id),
                "title": titles.get(r.proposal_id, ""),
                "cast_at": _ts(r.cast_at),
            }
            for r in VoteReceipt.objects.filter(member_id__in=member_ids).order_by("cast_at")
        ],
        # A director's board votes are public (accountability), so their own are listed with the choice.
        "board_votes": [
            {
                "proposal_id": str(vote.proposal_id),
                "title": titles.get(vote.proposal_id, ""),
                "choice": vote.choice,
            }
            for vote in Vote.objects.filter(director_id__in=member_ids).order_by("proposal_id")
        ],
        "ballot_receipts": [
            {"election_id": str(r.election_id), "title": r.election.title, "cast_at": _ts(r.cast_at)}
            for r in BallotReceipt.objects.filter(member_id__in=member_ids).select_related("election")
        ],
        "candidacies": [
            {
                "election_id": str(c.election_id),
                "title": c.election.title,
                "statement": c.statement,
                "nominated_at": _ts(c.nominated_at),
            }
            for c in Candidate.objects.filter(member_id__in=member_ids).select_related("election")
        ],
        "dividend_statements": [
            {
                "proposal_id": str(s.proposal_id),
                "period_start": s.period_start.isoformat(),
                "period_end": s.period_end.isoformat(),
                "basis": s.basis,
                "total": _money(s.total_minor, s.currency),
                "cash": _money(s.cash_minor, s.currency),
                "capital": _money(s.capital_minor, s.currency),
                "created_at": _ts(s.created_at),
            }
            for s in DividendStatement.objects.filter(member_id__in=member_ids).order_by("created_at")
        ],
    }


# --- Erasure ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureBlocker:
    """Why an erasure must wait: something the law or the co-op's books still need the person for."""

    code: str
    message: str


def erasure_blockers(*, user_id: uuid.UUID) -> list[ErasureBlocker]:
    """What holds an erasure back now (empty: it may go ahead), each with its own code."""
    blockers: list[ErasureBlocker] = []
    if (
        Trip.objects.filter(rider_id=user_id, status__in=sorted(OPEN_STATUSES)).exists()
        or Trip.objects.filter(driver_id=user_id, status__in=sorted(DRIVER_ACTIVE_STATUSES)).exists()
    ):
        blockers.append(
            ErasureBlocker("erasure_open_trip", "A trip of yours is still open: erasure waits until it ends.")
        )
    if (
        Trip.objects.filter(rider_id=user_id, status__in=sorted(UPCOMING_STATUSES)).exists()
        or Trip.objects.filter(claimed_by_id=user_id, status__in=sorted(UPCOMING_STATUSES)).exists()
        or RecurringRide.objects.filter(rider_id=user_id, status=RecurringRideStatus.ACTIVE).exists()
    ):
        blockers.append(
            ErasureBlocker(
                "erasure_rides_booked",
                "Rides are booked ahead for you, or claimed by you: cancel them (and any recurring ride), or "
                "give the claims back, first.",
            )
        )
    if Member.objects.filter(user_id=user_id).exclude(status=MemberStatus.WITHDRAWN).exists():
        blockers.append(
            ErasureBlocker(
                "erasure_member_share_capital",
                "You are a member holding share capital: withdraw from membership first (your share is "
                "settled as the bylaws say), then ask again.",
            )
        )
    owing = _personal_accounts_not_settled(user_id)
    in_flight = (
        PaymentCapture.objects.filter(rider_id=user_id)
        .exclude(status__in=[CaptureStatus.SUCCEEDED, CaptureStatus.VOIDED])
        .exists()
        or Payout.objects.filter(
            driver_id=user_id, status__in=[PayoutStatus.PENDING, PayoutStatus.SUBMITTED]
        ).exists()
        or CardHold.objects.filter(
            rider_id=user_id, status__in=[HoldStatus.AUTHORIZING, HoldStatus.AUTHORIZED]
        ).exists()
    )
    if owing or in_flight:
        what = ", ".join(owing) if owing else "a charge, card hold or payout in progress"
        blockers.append(
            ErasureBlocker(
                "erasure_money_outstanding",
                f"Money is still owed between you and the co-op ({what}): erasure waits until it is settled.",
            )
        )
    return blockers


def _personal_accounts_not_settled(user_id: uuid.UUID) -> list[str]:
    """The kinds of the person's own ledger accounts whose balance is not zero (a rider who owes a fare, a
    driver's pay or tips not paid out, retained capital, a dividend not paid)."""
    return sorted(
        {
            account.kind
            for account in LedgerAccount.objects.filter(owner_id=user_id)
            if _account_balance(account)
        }
    )


@dataclass(frozen=True)
class ErasureOutcome:
    """What became of a request: `completed` (erased at once) or `requested` (staff carry it out)."""

    request_id: uuid.UUID
    status: str
    requested_at: datetime
    completed_at: datetime | None

    def document(self) -> dict[str, Any]:
        return {
            "request_id": str(self.request_id),
            "status": self.status,
            "requested_at": wire_timestamp(self.requested_at),
            "completed_at": _ts(self.completed_at),
        }


def _outcome(request: ErasureRequest) -> ErasureOutcome:
    return ErasureOutcome(
        request_id=request.id,
        status=request.status,
        requested_at=request.requested_at,
        completed_at=request.completed_at,
    )


def erasure_request(*, user_id: uuid.UUID, password: str) -> ErasureOutcome:
    """The person asks to be erased, confirming with their current password.

    The request is recorded first (the co-op's clock to answer starts when it is asked), then checked:
    anything that blocks it raises Conflict with the first blocker's code (`erasure_open_trip`,
    `erasure_member_share_capital`, `erasure_money_outstanding`) and every blocker in `details`; the
    request stays open and staff see why. A rider with nothing pending who never drove nor was a member
    is erased at once: nothing of theirs needs a person's judgement. A driver, or anyone who was a member,
    is erased by staff (`manage.py account_erase`, or the admin action), who check what the regulator and
    the tax forms of the year still need (documents, a driver's year-end statement) before they do.
    Raises PermissionDenied `password_incorrect`.
    """
    request, _ = erasure.erasure_request_record(user_id=user_id, password=password)
    blockers = erasure_blockers(user_id=user_id)
    erasure.erasure_blockers_note(request_id=request.id, blockers=[asdict(b) for b in blockers])
    if blockers:
        raise _blocked(blockers, request_id=request.id)
    if _erased_at_once(user_id):
        account_erase(user_id=user_id, erased_by=None)
        request.refresh_from_db()
    return _outcome(request)


def _erased_at_once(user_id: uuid.UUID) -> bool:
    user = User.objects.get(id=user_id)
    return (
        not user.is_driver
        and not user.is_staff
        and not DriverProfile.objects.filter(user_id=user_id).exists()
        and not Member.objects.filter(user_id=user_id).exists()
    )


def _blocked(blockers: list[ErasureBlocker], *, request_id: uuid.UUID | None) -> Conflict:
    details: dict[str, Any] = {"blockers": [asdict(blocker) for blocker in blockers]}
    if request_id is not None:
        details["request_id"] = str(request_id)
    return Conflict(blockers[0].message, code=blockers[0].code, details=details)


@dataclass(frozen=True)
class ErasureResult:
    user_id: uuid.UUID
    request_id: uuid.UUID
    pseudonym: str
    cards_detached: int
    fixes_deleted: int
    comments_blanked: int
    cancel_reasons_blanked: int
    estimates_deleted: int


def account_erase(*, user_id: uuid.UUID, erased_by: uuid.UUID | None) -> ErasureResult:
    """Carry out the erasure of `user_id` (staff, or at once for a rider: `erasure_request`).

    Refused with Conflict (the blocker codes of `erasure_request`, or `already_erased`) while anything
    blocks it. Saved cards are detached at Stripe first, outside the transaction (a network call); if Stripe
    cannot be reached the erasure stops there with nothing else changed and is simply run again. Then, in one
    transaction: the person's free text on their trips, their location history beyond each trip's first and
    last fix, their last position and unused estimates go, their bank accounts are deactivated, the
    account is pseudonymised, and the erasure is appended to the governance audit log (last, as every
    act's audit entry is).
    """
    user = User.objects.filter(id=user_id).first()
    if user is None:
        raise NotFound(gettext("No such account."), code="account_not_found")
    if erasure.is_erased(user):
        raise Conflict(gettext("This account has already been erased."), code="already_erased")
    blockers = erasure_blockers(user_id=user_id)
    if blockers:
        open_request = erasure.erasure_request_open(user_id=user_id)
        if open_request is not None:
            erasure.erasure_blockers_note(request_id=open_request.id, blockers=[asdict(b) for b in blockers])
        raise _blocked(blockers, request_id=open_request.id if open_request else None)
    cards_detached = _cards_detach(user)
    with transaction.atomic():
        trip_ids = list(
            Trip.objects.select_for_update()
            .filter(Q(rider_id=user_id) | Q(driver_id=user_id))
            .order_by("id")
            .values_list("id", flat=True)
        )
        # Re-checked under the trips' locks: a trip that opened since the first check keeps the person.
        blockers = erasure_blockers(user_id=user_id)
        if blockers:
            raise _blocked(blockers, request_id=None)
        comments = Rating.objects.filter(trip_id__in=trip_ids).exclude(comment="").update(comment="")
        reasons = Trip.objects.filter(id__in=trip_ids).exclude(cancel_reason="").update(cancel_reason="")
        # A booking's reference is the organisation's free text about the rider (a patient number, say);
        # invoices already issued keep theirs as the organisation's billing record.
        Trip.objects.filter(rider_id=user_id).exclude(reference="").update(reference="")
        RecurringRide.objects.filter(rider_id=user_id).exclude(reference="").update(reference="")
        # What the person was told, and where: the outbox is delivery's working table, not a record.
        Notification.objects.filter(user_id=user_id).delete()
        notification_settings_erase(user_id=user_id)
        # Safety: the links made to the person's trips and their standing choices go; the SOS alerts they
        # raised stay (an emergency's record is append-only) under the pseudonymised account.
        TripShareLink.objects.filter(Q(created_by_id=user_id) | Q(trip__rider_id=user_id)).delete()
        RiderSafetySettings.objects.filter(rider_id=user_id).delete()
        # The organisations that knew them by name and phone, or counted them in, no longer do.
        OrganisationGuest.objects.filter(user_id=user_id).delete()
        OrganisationMembership.objects.filter(user_id=user_id).delete()
        # Invitations name the person by their phone only, which is about to go.
        OrganisationInvitation.objects.filter(phone=user.phone).delete()
        _cancel_event_reasons_blank(trip_ids)
        fixes = location_history_erase(driver_id=user_id)
        # Kept for tax and bank reconciliation, never again a destination: a row is only ever deactivated.
        DriverBankAccount.objects.filter(driver_id=user_id, is_active=True).update(
            is_active=False, deactivated_at=timezone.now()
        )
        estimates, _ = (
            FareEstimate.objects.filter(rider_id=user_id)
            .exclude(id__in=Trip.objects.filter(estimate__isnull=False).values("estimate_id"))
            .delete()
        )
        erased, request = erasure.user_pseudonymise(user_id=user_id, erased_by=erased_by)
        audit_append(
            kind="account.erased",
            payload={
                "user_id": str(user_id),
                "request_id": str(request.id),
                "erased_by": str(erased_by) if erased_by else None,
                "requested_at": wire_timestamp(request.requested_at),
            },
        )
    logger.info("account %s erased (request %s)", user_id, request.id)
    return ErasureResult(
        user_id=user_id,
        request_id=request.id,
        pseudonym=erased.name,
        cards_detached=cards_detached,
        fixes_deleted=fixes,
        comments_blanked=comments,
        cancel_reasons_blanked=reasons,
        estimates_deleted=estimates,
    )


def _cards_detach(user: User) -> int:
    """Detach every saved card at Stripe (through the cards app, which checks each is the rider's). The
    Stripe customer itself stays until backend/cards offers a way to delete it (see docs/compliance.md)."""
    if (
        not cards_in_use()
        or not StripeCustomer.objects.filter(rider_id=user.id).exists()
        or not user.is_rider
    ):
        return 0
    detached = 0
    for card in payment_methods_list(rider_id=user.id):
        payment_method_detach(rider_id=user.id, payment_method_id=card.id)
        detached += 1
    return detached


def _cancel_event_reasons_blank(trip_ids: list[uuid.UUID]) -> None:
    """A cancellation's event repeats its reason (free text): blank it there too."""
    for event in TripEvent.objects.filter(trip_id__in=trip_ids, details__has_key="reason"):
        if event.details.get("reason"):
            event.details = {**event.details, "reason": ""}
            event.save(update_fields=["details"])


def location_history_erase(*, driver_id: uuid.UUID) -> int:
    """Delete the driver's location history but what their trips' records need: each trip keeps its first
    and last fix (what the fare was measured between, as the retention job keeps after
    ROCHDALE_TRIP_TRACE_RETENTION_D); fixes off any trip all go, and so does the last known position.
    Returns how many fixes were deleted."""
    fixes = LocationFix.objects.filter(driver_id=driver_id)
    keep: set[int] = set()
    for trip_id in set(fixes.filter(trip__isnull=False).values_list("trip_id", flat=True)):
        trail = fixes.filter(trip_id=trip_id)
        first = trail.order_by("recorded_at", "id").values_list("id", flat=True).first()
        last = trail.order_by("-recorded_at", "-id").values_list("id", flat=True).first()
        keep.update(fix_id for fix_id in (first, last) if fix_id is not None)
    deleted, _ = fixes.exclude(id__in=keep).delete()
    DriverPresence.objects.filter(driver_id=driver_id).update(
        location=None, heading=None, speed_mps=None, accuracy_m=None
    )
    return deleted


def erasure_requests_open() -> list[ErasureRequest]:
    """The requests staff have to act on, oldest first."""
    return list(
        ErasureRequest.objects.filter(status=ErasureStatus.REQUESTED)
        .select_related("user")
        .order_by("requested_at")
    )
