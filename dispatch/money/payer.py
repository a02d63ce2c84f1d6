"""Who pays for a trip, as the ledger sees it: the rider (their `rider_receivable`, collected by a capture)
or the organisation that booked it (`Trip.payer == organisation`: its `organisation_receivable`, one account
per organisation with `code` its id, billed by the monthly invoice; docs/billing.md).

Settlement, refunds, receipts and invoices all read it from here, so they agree on which account a trip's
charge went to.
"""

from __future__ import annotations

import uuid
from typing import Any

from backend.fares import ledger
from backend.fares.ledger import credit, debit
from backend.fares.models import AccountKind
from dispatch.models import Trip, TripPayer

# The receivables a trip's charge may be posted to: its rider's, or the organisation's that pays for it.
PAYER_RECEIVABLE_KINDS = (AccountKind.RIDER_RECEIVABLE, AccountKind.ORGANISATION_RECEIVABLE)


def billed_organisation_id(trip: Trip) -> uuid.UUID | None:
    """The organisation a trip's fare, fees and cancellation fee are billed to; None when its rider pays."""
    if trip.payer == TripPayer.ORGANISATION and trip.organisation_id is not None:
        return trip.organisation_id
    return None


def organisation_account_code(organisation_id: uuid.UUID) -> str:
    """The `LedgerAccount.code` of an organisation's receivable account: its id."""
    return str(organisation_id)


def payer_debit(*, rider_id: uuid.UUID, organisation_id: uuid.UUID | None, amount_minor: int) -> ledger.Line:
    """The line that makes the trip's payer owe `amount_minor`: the organisation's receivable when one pays,
    else the rider's."""
    if organisation_id is not None:
        code = organisation_account_code(organisation_id)
        return debit(AccountKind.ORGANISATION_RECEIVABLE, None, amount_minor, code=code)
    return debit(AccountKind.RIDER_RECEIVABLE, rider_id, amount_minor)


def payer_credit(*, rider_id: uuid.UUID, organisation_id: uuid.UUID | None, amount_minor: int) -> ledger.Line:
    """The mirror of `payer_debit`: what a refund gives back to whoever paid."""
    if organisation_id is not None:
        code = organisation_account_code(organisation_id)
        return credit(AccountKind.ORGANISATION_RECEIVABLE, None, amount_minor, code=code)
    return credit(AccountKind.RIDER_RECEIVABLE, rider_id, amount_minor)


def payer_metadata(organisation_id: uuid.UUID | None) -> dict[str, Any]:
    """What a charge's entry records about its payer: nothing for a rider, the organisation otherwise."""
    if organisation_id is None:
        return {}
    return {"payer": TripPayer.ORGANISATION.value, "organisation": str(organisation_id)}
