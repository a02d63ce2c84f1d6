"""The board's seats: staff seat the founding directors; elections (services/elections.py) seat the rest;
a seat ends when its holder withdraws or is re-elected to a new term."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound
from governance import selectors
from governance.audit import AuditEvent, audit_append_all
from governance.models import BoardSeat, Election, Member, SeatSource


def board_seats_end(*, member: Member, at: datetime, reason: str) -> list[AuditEvent]:
    """End the member's seats in force (inside the caller's transaction, the member row locked); returns
    the entries for the caller to append last."""
    events = []
    for seat in selectors.seats_in_force(at).filter(member=member):
        seat.ended_at = at
        seat.ended_reason = reason[:200]
        seat.save(update_fields=["ended_at", "ended_reason"])
        events.append(
            AuditEvent(
                kind="board.seat_ended",
                payload={"seat_id": seat.id, "member_id": member.id, "ended_at": at, "reason": reason},
            )
        )
    return events


def board_seat_add(
    *, member: Member, term_ends: datetime, source: str, election: Election | None, at: datetime
) -> tuple[BoardSeat, AuditEvent]:
    """Seat the member from ``at`` to ``term_ends`` (inside the caller's transaction, the member row
    locked); returns the seat and its entry for the caller to append last."""
    seat = BoardSeat.objects.create(
        member=member, starts_at=at, term_ends=term_ends, source=source, election=election
    )
    event = AuditEvent(
        kind="board.seat_added",
        payload={
            "seat_id": seat.id,
            "member_id": member.id,
            "source": source,
            "election_id": election.id if election else None,
            "starts_at": at,
            "term_ends": term_ends,
        },
    )
    return seat, event


def board_seat_found(
    *, member_id: uuid.UUID | str, actor: User, term_ends: datetime | None = None
) -> BoardSeat:
    """Staff seat a founding director (before the first election)."""
    now = timezone.now()
    if term_ends is None:
        term_ends = now + timedelta(days=settings.ROCHDALE_BOARD_TERM_DAYS)
    if term_ends <= now:
        raise InvalidInput(
            _("term_ends must be in the future."), details={"term_ends": [_("must be in the future")]}
        )
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).filter(id=member_id).first()
        if member is None:
            raise NotFound(_("No such member."))
        if not member.in_good_standing:
            raise Conflict(
                _("Only a member in good standing may sit on the board."), code="not_in_good_standing"
            )
        if selectors.seats_in_force(now).filter(member=member).exists():
            raise Conflict(_("This member already holds a seat."), code="already_director")
        seat, event = board_seat_add(
            member=member, term_ends=term_ends, source=SeatSource.FOUNDING, election=None, at=now
        )
        audit_append_all([event])
    return seat
