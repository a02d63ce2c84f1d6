"""A trip's itemised receipt, read from the ledger so that the receipt and the books agree to the cent.

What the rider was charged is what the journal debited their `rider_receivable` account for the trip (on
a trip an organisation pays for, the organisation's `organisation_receivable`: the receipt then says whom it
is billed to, `billed_to`, and names no card; docs/billing.md):

| entry kind | on the receipt |
|---|---|
| `trip_fare` | the fare (the trip's breakdown lines when they add up to the fare posted, else one line) |
| | and the pass-through fees its metadata lists (`metadata["fees"]`: code, label, amount) |
| `cancellation_fee` | the late-cancellation fee |
| `tip` | each tip |
| `refund` | each refund (a credit to the rider) |
| `reversal` of any of these | netted into the entry it reverses |

Payment entries (`payment_capture`, `refund_payout`) settle the receivable and are not charges: they show as
the payment's status instead. A refund is the money its entry moved: credited to the rider's receivable by
`refund_post`, or paid straight out of the co-op's balance for one made in the card processor's dashboard
(`refund:stripe:{id}`, backend/cards/webhooks.py). So `total = charged - refunded` is the net of the rider's
receivable postings on these entries less any refund made at the processor; `tests/receipts/` checks it
against the postings themselves.

The trip row gives the rest (places, times, distance, the planned route for the map); never the money. The
payment method is the provider of the fare's capture and, for card payments, the card's brand and last four
digits when the card processor reported them (`card`: None otherwise).

Rendering (HTML for email and PDF, plain text) is in this module too: the templates are
`dispatch/templates/receipts/`, the PDF is WeasyPrint's, and the route map is inline SVG
(dispatch/money/route_map.py). Sending is dispatch/money/receipt_mail.py.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from weasyprint import HTML

from backend.cards.customers import card_of_trip
from backend.errors import Conflict, NotFound
from backend.fares import pricing
from backend.fares.models import CapturePurpose, JournalEntry, PaymentCapture, Posting
from backend.fares.money import minor_to_decimal
from backend.fares.pay import local_zone
from dispatch.models import Trip
from dispatch.money.payer import PAYER_RECEIVABLE_KINDS, billed_organisation_id
from dispatch.money.route_map import route_svg

TRIP_FARE = "trip_fare"
CANCELLATION_FEE = "cancellation_fee"
TIP = "tip"
REFUND = "refund"
RECEIPT_ENTRY_KINDS = (TRIP_FARE, CANCELLATION_FEE, TIP, REFUND)


class ReceiptNotAvailable(Conflict):
    code = "receipt_not_available"
    default_message = gettext_lazy("This trip has charged nothing yet, so it has no receipt.")


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    amount: int
    code: str = ""


@dataclass(frozen=True)
class ReceiptTip:
    amount: int
    at: datetime


@dataclass(frozen=True)
class ReceiptRefund:
    entry_id: uuid.UUID
    amount: int
    reason: str
    at: datetime


@dataclass(frozen=True)
class PaymentMethod:
    provider: str
    status: str
    card_brand: str | None = None
    card_last4: str | None = None


@dataclass
class Receipt:
    trip: Trip
    currency: str
    fare_lines: list[ReceiptLine] = field(default_factory=list)
    fees: list[ReceiptLine] = field(default_factory=list)
    cancellation_fee: int = 0
    tips: list[ReceiptTip] = field(default_factory=list)
    refunds: list[ReceiptRefund] = field(default_factory=list)
    payment: PaymentMethod | None = None
    updated_at: datetime | None = None  # the latest money entry on the receipt
    billed_to: str = ""  # the organisation that pays the fare, fees and any cancellation fee (its name)

    @property
    def fare(self) -> int:
        return sum(line.amount for line in self.fare_lines)

    @property
    def fees_total(self) -> int:
        return sum(line.amount for line in self.fees)

    @property
    def tips_total(self) -> int:
        return sum(tip.amount for tip in self.tips)

    @property
    def charged(self) -> int:
        """Everything the trip charged the rider: fare, fees, a late-cancellation fee, tips."""
        return self.fare + self.fees_total + self.cancellation_fee + self.tips_total

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds)

    @property
    def total(self) -> int:
        """What the rider pays in the end: charged less refunded."""
        return self.charged - self.refunded


def trip_receipt(*, trip_id: uuid.UUID) -> Receipt:
    """The receipt of a trip that charged its rider (a completed trip, or a late cancellation's fee).

    Raises NotFound (`trip_not_found`) for an unknown trip and ReceiptNotAvailable (409) for one that has
    charged nothing. Access is the caller's to check (`receipt_for_viewer`)."""
    related = ("rider", "driver", "vehicle", "organisation")
    trip = Trip.objects.select_related(*related).filter(id=trip_id).first()
    if trip is None:
        raise NotFound(_("No such trip."), code="trip_not_found")
    entries = list(
        JournalEntry.objects.filter(trip_id=trip.id)
        .filter(Q(kind__in=RECEIPT_ENTRY_KINDS) | Q(kind="reversal", reverses__kind__in=RECEIPT_ENTRY_KINDS))
        .select_related("reverses")
        .order_by("created_at", "id")
    )
    if not any(entry.kind in (TRIP_FARE, CANCELLATION_FEE) for entry in entries):
        raise ReceiptNotAvailable(details={"status": trip.status})
    rider_net = _rider_receivable_net(entries)
    moved = _amounts_moved(entries)

    receipt = Receipt(trip=trip, currency=trip.currency)
    fare_posted = 0
    fees: dict[str, ReceiptLine] = {}
    tips: dict[uuid.UUID, ReceiptTip] = {}
    refunds: dict[uuid.UUID, ReceiptRefund] = {}
    for entry in entries:
        source = entry.reverses if entry.kind == "reversal" else entry
        assert source is not None
        sign = -1 if entry.kind == "reversal" else 1
        charged = rider_net[entry.id]  # a reversal's is negative already
        metadata = source.metadata or {}
        if source.kind == TRIP_FARE:
            entry_fees = _fee_lines(metadata)
            for line in entry_fees:
                before = fees.get(line.code, ReceiptLine(label=line.label, amount=0, code=line.code))
                fees[line.code] = ReceiptLine(
                    label=before.label, amount=before.amount + sign * line.amount, code=line.code
                )
            fare_posted += charged - sign * sum(line.amount for line in entry_fees)
        elif source.kind == CANCELLATION_FEE:
            receipt.cancellation_fee += charged
        elif source.kind == TIP:
            before_tip = tips.get(source.id)
            amount = charged + (before_tip.amount if before_tip else 0)
            tips[source.id] = ReceiptTip(amount=amount, at=source.created_at)
        elif source.kind == REFUND:
            # What went back to the rider: credited to their receivable by our refunds, paid straight out
            # of the co-op's balance for one made at the card processor (the entry's size either way).
            before_refund = refunds.get(source.id)
            amount = sign * moved[entry.id] + (before_refund.amount if before_refund else 0)
            reason = refund_reason(metadata)
            refunds[source.id] = ReceiptRefund(
                entry_id=source.id, amount=amount, reason=reason, at=source.created_at
            )
        receipt.updated_at = max(receipt.updated_at or entry.created_at, entry.created_at)

    receipt.fare_lines = _fare_lines(trip, fare_posted) if fare_posted else []
    receipt.fees = [line for line in fees.values() if line.amount]
    receipt.tips = [tip for tip in tips.values() if tip.amount]
    receipt.refunds = [refund for refund in refunds.values() if refund.amount]
    receipt.payment = _payment_method(trip)
    if billed_organisation_id(trip) is not None:
        receipt.billed_to = trip.organisation.name
    return receipt


def refund_reason(metadata: dict[str, Any]) -> str:
    """Why a refund entry was made: staff's reason, or where it was made when not through Rochdale."""
    if metadata.get("reason"):
        return str(metadata["reason"])
    return _("Refunded at Stripe") if metadata.get("made_at_stripe") else ""


def receipt_for_viewer(*, trip_id: uuid.UUID, viewer_id: uuid.UUID, viewer_is_staff: bool) -> Receipt:
    """The receipt, for the trip's rider or staff. Anyone else, the trip's driver included (the receipt is
    the rider's payment record), is told the trip does not exist, exactly as for an unknown id."""
    if not viewer_is_staff and not Trip.objects.filter(id=trip_id, rider_id=viewer_id).exists():
        raise NotFound(_("No such trip."), code="trip_not_found")
    return trip_receipt(trip_id=trip_id)


def _rider_receivable_net(entries: list[JournalEntry]) -> dict[uuid.UUID, int]:
    """Per entry: debits minus credits on the payer's receivable account (the rider's, or the paying
    organisation's; charges +, refunds -)."""
    net: dict[uuid.UUID, int] = defaultdict(int)
    for entry in entries:
        net[entry.id] = 0
    for entry_id, debit_minor, credit_minor in Posting.objects.filter(
        entry__in=entries, account__kind__in=PAYER_RECEIVABLE_KINDS
    ).values_list("entry_id", "debit_minor", "credit_minor"):
        net[entry_id] += debit_minor - credit_minor
    return net


def _amounts_moved(entries: list[JournalEntry]) -> dict[uuid.UUID, int]:
    """Per entry: the money it moved (its credits, which equal its debits: every entry balances)."""
    moved: dict[uuid.UUID, int] = {entry.id: 0 for entry in entries}
    for entry_id, credit_minor in Posting.objects.filter(entry__in=entries).values_list(
        "entry_id", "credit_minor"
    ):
        moved[entry_id] += credit_minor
    return moved


def _fee_lines(metadata: dict[str, Any]) -> list[ReceiptLine]:
    """The pass-through fees a fare entry lists (`metadata["fees"]`), whatever lines exist."""
    lines = []
    for item in metadata.get("fees") or []:
        amount = item.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int):
            continue
        code = str(item.get("code") or "fee")
        lines.append(ReceiptLine(label=str(item.get("label") or code), amount=amount, code=code))
    return lines


def _fare_lines(trip: Trip, fare_posted: int) -> list[ReceiptLine]:
    """The fare's lines from the trip's breakdown when they add up to what the ledger posted; otherwise
    (a corrected fare, an old trip) one line with the posted amount: the ledger is the authority."""
    breakdown = (trip.fare_breakdown or {}).get("lines") or []
    lines = [
        ReceiptLine(label=str(line.get("label", "")), amount=line["amount"])
        for line in breakdown
        if isinstance(line.get("amount"), int) and not isinstance(line.get("amount"), bool)
    ]
    if lines and sum(line.amount for line in lines) == fare_posted:
        return lines
    return [ReceiptLine(label=_("Fare"), amount=fare_posted)]


def _payment_method(trip: Trip) -> PaymentMethod | None:
    capture = (
        PaymentCapture.objects.filter(
            trip_id=trip.id, purpose__in=[CapturePurpose.FARE, CapturePurpose.CANCELLATION_FEE]
        )
        .order_by("created_at")
        .first()
    )
    if capture is None:
        return None
    card = card_of_trip(trip_id=trip.id)
    return PaymentMethod(
        provider=capture.provider,
        status=capture.status,
        card_brand=card.brand if card else None,
        card_last4=card.last4 if card else None,
    )


# --- Rendering: template context, HTML, text, PDF (the API shapes the JSON answer) -------------------------


def driver_summary(trip: Trip) -> dict[str, Any] | None:
    """What a receipt says about the driver: a first name and the car, as a taxi receipt does."""
    if trip.driver is None:
        return None
    vehicle = trip.vehicle
    return {
        "first_name": (trip.driver.name.split() or [""])[0],
        "vehicle": (
            {"make": vehicle.make, "model": vehicle.model, "plate": vehicle.plate} if vehicle else None
        ),
    }


def receipt_route_svg(trip: Trip) -> str:
    """The trip's planned route as an inline SVG map; a dashed straight line when none was planned."""
    if trip.route_geometry is not None and len(trip.route_geometry.coords) >= 2:
        return route_svg([(lng, lat) for lng, lat in trip.route_geometry.coords])
    return route_svg([(trip.pickup.x, trip.pickup.y), (trip.dropoff.x, trip.dropoff.y)], planned=False)


# The fare lines pricing writes (backend/fares/pricing.py is pure, so it cannot mark them itself): a
# receipt shows them in the reader's language; a label it does not know (one the board wrote) stays as is.
FARE_LINE_LABELS = {
    pricing.LINE_BASE: gettext_lazy("Base fare"),
    pricing.LINE_DISTANCE: gettext_lazy("Distance"),
    pricing.LINE_TIME: gettext_lazy("Time"),
    pricing.LINE_SURGE: gettext_lazy("Surge"),
    pricing.LINE_MINIMUM: gettext_lazy("Minimum fare adjustment"),
    pricing.LINE_BOOKING_FEE: gettext_lazy("Booking fee"),
}


def fare_line_label(label: str) -> str:
    """A fare line's label in the active language (pricing's own labels; others unchanged)."""
    known = FARE_LINE_LABELS.get(label)
    return str(known) if known is not None else label


def format_money(amount_minor: int, currency: str) -> str:
    """`12.34 USD`: exact major units, as the earnings CSV writes them, with the code."""
    return f"{minor_to_decimal(amount_minor, currency)} {currency}"


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment, local_zone()).strftime("%Y-%m-%d %H:%M %Z")


def receipt_context(receipt: Receipt) -> dict[str, Any]:
    """What the receipt templates draw: every amount already formatted, every time local."""
    trip, cur = receipt.trip, receipt.currency

    def fmt(amount: int) -> str:
        return format_money(amount, cur)

    driver = driver_summary(trip)
    payment = receipt.payment
    return {
        "cooperative": settings.ROCHDALE_COOPERATIVE_NAME,
        "trip_id": str(trip.id),
        "status": trip.status,
        "fare_lines": [
            {"label": fare_line_label(line.label), "amount": fmt(line.amount)} for line in receipt.fare_lines
        ],
        "fare": fmt(receipt.fare) if receipt.fare_lines else "",
        "fees": [{"label": f.label, "amount": fmt(f.amount)} for f in receipt.fees],
        "cancellation_fee": fmt(receipt.cancellation_fee) if receipt.cancellation_fee else "",
        "tips": [{"amount": fmt(tip.amount), "at": _local(tip.at)} for tip in receipt.tips],
        "refunds": [
            {"amount": fmt(r.amount), "reason": r.reason, "at": _local(r.at)} for r in receipt.refunds
        ],
        "charged": fmt(receipt.charged),
        "refunded": fmt(receipt.refunded) if receipt.refunds else "",
        "total": fmt(receipt.total),
        "billed_to": receipt.billed_to,
        "payment_provider": payment.provider if payment else "",
        "payment_status": payment.status if payment else "",
        "card": (
            _("%(brand)s ending %(last4)s")
            % {"brand": payment.card_brand or _("Card"), "last4": payment.card_last4}
            if payment and payment.card_last4
            else ""
        ),
        "pickup": f"{trip.pickup.y:.5f}, {trip.pickup.x:.5f}",
        "dropoff": f"{trip.dropoff.y:.5f}, {trip.dropoff.x:.5f}",
        "requested_at": _local(trip.requested_at),
        "started_at": _local(trip.started_at),
        "completed_at": _local(trip.completed_at),
        "ended_at": _local(trip.ended_at),
        "distance_km": (
            f"{trip.measured_distance_m / 1000:.2f} km" if trip.measured_distance_m is not None else ""
        ),
        "duration_min": (
            f"{round(trip.measured_duration_s / 60)} min" if trip.measured_duration_s is not None else ""
        ),
        "driver_first_name": driver["first_name"] if driver else "",
        "vehicle": (
            f"{driver['vehicle']['make']} {driver['vehicle']['model']} ({driver['vehicle']['plate']})"
            if driver and driver["vehicle"]
            else ""
        ),
        "route_svg": receipt_route_svg(trip),
        "updated_at": _local(receipt.updated_at),
    }


def receipt_html(receipt: Receipt) -> str:
    return render_to_string("receipts/receipt.html", receipt_context(receipt))


def receipt_text(receipt: Receipt) -> str:
    return render_to_string("receipts/receipt.txt", receipt_context(receipt))


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a PDF (WeasyPrint, from the same HTML; the route map is vector SVG, nothing fetched)."""
    return html_to_pdf(receipt_html(receipt))


def html_to_pdf(html: str) -> bytes:
    """A PDF of self-contained HTML. No base URL: a page that named an outside resource would get nothing,
    not a network request."""
    return HTML(string=html, url_fetcher=_refuse_fetch).write_pdf()


def _refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, Any]:
    raise ValueError(f"receipts are self-contained; refusing to fetch {url}")
