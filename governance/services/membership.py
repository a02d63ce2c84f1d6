"""Membership: joining with one member share, the share paid by instalments withheld from trip pay,
suspension, and withdrawal (the share repaid as the bylaws say)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind, JournalEntry
from backend.fares.money import round_half_up
from governance import selectors
from governance.audit import AuditEvent, audit_append, audit_append_all
from governance.models import Member, MemberStatus
from governance.services.board import board_seats_end


class TripPay(Protocol):
    """What withholding reads of a completed trip: the dispatch Trip row or the fares ledger's TripCharge
    (governance imports neither: it sits below dispatch)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def driver_id(self) -> uuid.UUID | None: ...

    @property
    def driver_pay_minor(self) -> int: ...

    @property
    def currency(self) -> str: ...


def membership_join(*, user: User) -> Member:
    """An approved driver subscribes one member share; the unpaid price is withheld from earnings later."""
    profile = getattr(user, "driver_profile", None) if user.is_driver else None
    if profile is None or not profile.is_approved:
        raise PermissionDenied(
            _("Only approved drivers may join the co-operative."), code="not_an_approved_driver"
        )
    price = int(settings.ROCHDALE_SHARE_PRICE_MINOR)
    currency = settings.ROCHDALE_CURRENCY
    with transaction.atomic():
        try:
            with transaction.atomic():
                member = Member.objects.create(user=user, share_price_minor=price, currency=currency)
        except IntegrityError:
            raise Conflict(_("You are already a member."), code="already_member") from None
        if price:
            ledger.post_entry(
                key=f"member:{member.id}:subscription",
                kind="share_subscription",
                currency=currency,
                memo=f"Member share subscribed by member {member.id}",
                lines=[
                    debit(AccountKind.SHARE_SUBSCRIPTIONS, user.id, price),
                    credit(AccountKind.MEMBER_EQUITY, user.id, price),
                ],
            )
        audit_append(
            kind="membership.joined",
            payload={
                "member_id": member.id,
                "share_price": {"amount": price, "currency": currency},
                "joined_at": member.joined_at,
            },
        )
    return member


def share_instalment_withhold(*, trip: TripPay) -> None:
    """Withhold the next share instalment from a completed trip's pay (rate x pay, capped at what remains).

    Called by the trip's completion just before its fare is posted, in the same transaction (the member row
    comes before ledger inserts in the one lock order, backend/fares/ledger.py). Idempotent per trip.
    """
    if not trip.driver_id or not trip.driver_pay_minor:
        return
    key = f"trip:{trip.id}:share_instalment"
    if JournalEntry.objects.filter(key=key).exists():
        return
    member = (
        Member.objects.select_for_update(no_key=True)
        .filter(user_id=trip.driver_id)
        .exclude(status=MemberStatus.WITHDRAWN)
        .first()
    )
    if member is None or member.currency != trip.currency:
        return
    outstanding = selectors.share_outstanding_minor(member)
    if outstanding <= 0:
        return
    rate = Fraction(Decimal(settings.ROCHDALE_SHARE_INSTALMENT_RATE))
    amount = min(round_half_up(rate * trip.driver_pay_minor), outstanding)
    if amount <= 0:
        return
    ledger.post_entry(
        key=key,
        kind="share_instalment",
        currency=trip.currency,
        trip_id=trip.id,
        memo=f"Share instalment of member {member.id} withheld from trip {trip.id}",
        lines=[
            debit(AccountKind.DRIVER_PAYABLE, trip.driver_id, amount),
            credit(AccountKind.SHARE_SUBSCRIPTIONS, trip.driver_id, amount),
        ],
        metadata={"member_id": str(member.id)},
    )


def membership_withdraw(*, user: User) -> Member:
    """A member leaves: the unpaid part of the share is cancelled, the paid part repaid as the bylaws say
    (``ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL``: ``paid`` repays it to the driver's earnings, ``none``
    keeps it in the co-op's surplus), and any board seat ends."""
    now = timezone.now()
    with transaction.atomic():
        member = (
            Member.objects.select_for_update(no_key=True)
            .filter(user=user)
            .exclude(status=MemberStatus.WITHDRAWN)
            .first()
        )
        if member is None:
            raise NotFound(_("You are not a member."), code="not_a_member")
        outstanding = selectors.share_outstanding_minor(member)
        paid = member.share_price_minor - outstanding
        mode = settings.ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL
        repaid = paid if mode == "paid" else 0
        lines = [
            debit(AccountKind.MEMBER_EQUITY, user.id, outstanding),
            credit(AccountKind.SHARE_SUBSCRIPTIONS, user.id, outstanding),
            debit(AccountKind.MEMBER_EQUITY, user.id, paid),
            credit(AccountKind.DRIVER_PAYABLE, user.id, repaid),
            credit(AccountKind.SURPLUS, None, paid - repaid),
        ]
        if outstanding or paid:
            ledger.post_entry(
                key=f"member:{member.id}:withdrawal",
                kind="share_withdrawal",
                currency=member.currency,
                memo=f"Member {member.id} withdrew; share repaid: {repaid}",
                lines=lines,
            )
        events = board_seats_end(member=member, at=now, reason="the director withdrew from membership")
        member.status = MemberStatus.WITHDRAWN
        member.status_changed_at = now
        member.withdrawn_at = now
        member.save(update_fields=["status", "status_changed_at", "withdrawn_at"])
        events.append(
            AuditEvent(
                kind="membership.withdrawn",
                payload={
                    "member_id": member.id,
                    "repaid": {"amount": repaid, "currency": member.currency},
                    "cancelled_unpaid": {"amount": outstanding, "currency": member.currency},
                },
            )
        )
        audit_append_all(events)
    return member


def membership_set_status(
    *, member_id: uuid.UUID | str, status: str, actor: User, reason: str = ""
) -> Member:
    """Staff suspend a member (no voting, proposing or standing) or reinstate them."""
    if status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise InvalidInput(
            _("status must be active or suspended."), details={"status": [_("not a valid status")]}
        )
    with transaction.atomic():
        member = Member.objects.select_for_update(no_key=True).filter(id=member_id).first()
        if member is None:
            raise NotFound(_("No such member."))
        if member.status == MemberStatus.WITHDRAWN:
            raise Conflict(_("A withdrawn membership cannot change status."), code="member_withdrawn")
        if member.status == status:
            return member
        member.status = status
        member.status_changed_at = timezone.now()
        member.save(update_fields=["status", "status_changed_at"])
        audit_append(
            kind="membership.status_changed",
            payload={"member_id": member.id, "status": status, "by": actor.id, "reason": reason[:300]},
        )
    return member
