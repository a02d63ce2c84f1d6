"""Patronage dividends by member vote: a proposal names the surplus, the period, the basis and the cash
share, checked when it opens; when the members pass it, the surplus is split by patronage
(governance/dividends.py, pure) into a statement per member and one balanced ledger entry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from backend.errors import InvalidInput
from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind
from governance import selectors
from governance.audit import AuditEvent
from governance.dividends import MINIMUM_CASH_SHARE, allocate_patronage
from governance.models import DividendBasis, DividendStatement, Member, MemberStatus, Proposal


def _parse_date(raw: object, field: str, errors: dict[str, list[str]]) -> date | None:
    if not isinstance(raw, str):
        errors[field] = [gettext("must be a date, YYYY-MM-DD")]
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[field] = [gettext("must be a date, YYYY-MM-DD")]
        return None


def dividend_payload_validated(payload: object) -> dict[str, Any]:
    """The terms a dividend proposal stores: ``{"surplus", "period_start", "period_end", "basis",
    "cash_share"}``, each checked (the cash share at least the bylaws' minimum)."""
    if not isinstance(payload, dict):
        raise InvalidInput(gettext("A dividend proposal needs a payload."), code="invalid_dividend")
    errors: dict[str, list[str]] = {}
    surplus = payload.get("surplus")
    currency = settings.ROCHDALE_CURRENCY
    amount = surplus.get("amount") if isinstance(surplus, dict) else None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        errors["surplus.amount"] = [gettext("must be a positive integer in minor units")]
    if not isinstance(surplus, dict) or surplus.get("currency") != currency:
        errors["surplus.currency"] = [gettext("must be %(currency)s") % {"currency": currency}]
    start = _parse_date(payload.get("period_start"), "period_start", errors)
    end = _parse_date(payload.get("period_end"), "period_end", errors)
    if start and end and end < start:
        errors["period_end"] = [gettext("must not be before period_start")]
    basis = payload.get("basis")
    if basis not in DividendBasis.values:
        errors["basis"] = [gettext("must be one of %(bases)s") % {"bases": ", ".join(DividendBasis.values)}]
    minimum = max(Decimal(settings.ROCHDALE_DIVIDEND_MIN_CASH_SHARE), MINIMUM_CASH_SHARE)
    raw_share = payload.get("cash_share")
    try:
        share = Decimal(raw_share) if isinstance(raw_share, str) else None
    except InvalidOperation:
        share = None
    if share is None or not share.is_finite() or not minimum <= share <= 1:
        errors["cash_share"] = [
            gettext('must be a decimal string from "%(minimum)s" to "1"') % {"minimum": minimum}
        ]
    if errors:
        raise InvalidInput(
            gettext("The dividend proposal is not valid."), code="invalid_dividend", details=errors
        )
    return {
        "surplus": {"amount": amount, "currency": currency},
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "basis": basis,
        "cash_share": str(share),
    }


def dividend_allocate(proposal: Proposal, *, now: datetime) -> tuple[dict[str, Any], AuditEvent]:
    """Split a passed dividend proposal's surplus by patronage; returns the proposal's `effect` and the
    entry for the caller to append last."""
    payload = proposal.payload
    start, end = date.fromisoformat(payload["period_start"]), date.fromisoformat(payload["period_end"])
    surplus = payload["surplus"]["amount"]
    currency = payload["surplus"]["currency"]
    members = {str(m.id): m for m in Member.objects.exclude(status=MemberStatus.WITHDRAWN)}
    measures = selectors.patronage_by_member(list(members.values()), start=start, end=end)
    basis = payload["basis"]
    weights = {member_id: measure.weight(basis) for member_id, measure in measures.items()}
    allocations = allocate_patronage(surplus, weights, Decimal(payload["cash_share"]))
    if allocations.reason and not any(a.total for a in allocations):
        event = AuditEvent(
            kind="dividend.allocated",
            payload={"proposal_id": proposal.id, "allocated": 0, "reason": allocations.reason},
        )
        return {"allocated": {"amount": 0, "currency": currency}, "reason": allocations.reason}, event
    lines = [debit(AccountKind.SURPLUS, None, surplus)]
    statements = []
    for allocation in allocations:
        member = members[allocation.member_id]
        lines.append(credit(AccountKind.DIVIDENDS_PAYABLE, member.user_id, allocation.cash))
        lines.append(credit(AccountKind.MEMBER_CAPITAL, member.user_id, allocation.capital))
        statements.append(
            DividendStatement(
                proposal=proposal,
                member=member,
                period_start=start,
                period_end=end,
                basis=basis,
                patronage=measures[allocation.member_id].label(basis),
                total_minor=allocation.total,
                cash_minor=allocation.cash,
                capital_minor=allocation.capital,
                currency=currency,
                created_at=now,
            )
        )
    entry, _ = ledger.post_entry(
        key=f"dividend:{proposal.id}",
        kind="patronage_dividend",
        currency=currency,
        memo=f"Patronage dividend of proposal {proposal.id}",
        lines=lines,
        metadata={"proposal_id": str(proposal.id), "basis": basis},
    )
    DividendStatement.objects.bulk_create(statements)
    event = AuditEvent(
        kind="dividend.allocated",
        payload={
            "proposal_id": proposal.id,
            "journal_entry": entry.id,
            "surplus": surplus,
            "cash_total": allocations.cash_total,
            "capital_total": allocations.capital_total,
            "allocations": [
                {"member_id": a.member_id, "total": a.total, "cash": a.cash, "capital": a.capital}
                for a in allocations
            ],
        },
    )
    effect = {
        "allocated": {"amount": surplus, "currency": currency},
        "cash": {"amount": allocations.cash_total, "currency": currency},
        "capital": {"amount": allocations.capital_total, "currency": currency},
        "members": len(statements),
        "journal_entry": str(entry.id),
    }
    return effect, event
