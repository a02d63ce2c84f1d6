"""How a payout leaves the co-op: adapters behind one small protocol, as payment providers and routers are.

`PayoutAdapter.send(batch)` takes payouts already recorded in the ledger (dispatch/money/payouts.py claims
them first) and answers one `PayoutResult` per payout:

* `paid`: the money moved (a Stripe transfer exists): status paid;
* `submitted`: handed on, not settled yet (in a bank file): status stays submitted, with the reference;
* `refused`: a definitive no, which the provider would repeat for this key: status failed, and the ledger
  entry is reversed so the amount goes back to the driver's balance;
* `unknown`: no answer (timeout, connection lost, 5xx, 429, key busy): retried later with the SAME key.

Two adapters:

* `stripe` (`StripeConnectAdapter`): a Stripe Connect transfer to the driver's Express account with the
  official SDK (`transfers.create(amount, currency, destination, idempotency_key=...)`). `StripeConnect`
  also makes the Express account and its onboarding link. The SDK is given `STRIPE_API_BASE` as its API
  address (`base_addresses["api"]`, the per-client form of `stripe.api_base`, so no module-global state is
  changed under other threads), `ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S` as its HTTP timeout, and no retries
  of its own: the retry is ours, with the same key, after the claim's lease.
* `ach` (`AchFileAdapter`): a NACHA PPD credit file (dispatch/money/nacha.py) plus a CSV summary with the
  account numbers masked, written to `ROCHDALE_PAYOUT_FILES_DIR/{batch}.ach` and `.csv` (mode 0600: the
  .ach file holds full account numbers). Rendering is a pure function of the batch, so writing it again
  after a crash writes the same bytes; the batch id is this adapter's idempotency key.

Another method plugs in with `register_payout_adapter(name, factory)`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import stripe
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.errors import ServiceUnavailable, Unprocessable
from backend.fares.money import minor_to_decimal
from backend.fares.pay import local_zone
from dispatch.bank_details import mask_account_number
from dispatch.money.nacha import NachaCredit, NachaError, NachaOriginator, ppd_credit_file

logger = logging.getLogger(__name__)

STRIPE = "stripe"
ACH = "ach"


class PayoutOutcome(StrEnum):
    PAID = "paid"
    SUBMITTED = "submitted"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class BankDestination:
    """Full bank details, for the bank file only (never logged, never shown)."""

    holder_name: str
    routing_number: str
    account_number: str
    account_type: str

    def __repr__(self) -> str:  # a traceback or a log line must not carry the account number
        return f"BankDestination({self.account_type} {mask_account_number(self.account_number)})"


@dataclass(frozen=True)
class PayoutRequest:
    """One payout to send. `idempotency_key` is the same on every attempt of this payout; `destination`
    is the Stripe account id (stripe) or the masked account (ach, with `bank` holding the details)."""

    payout_id: uuid.UUID
    driver_id: uuid.UUID
    week_start: date
    amount_minor: int
    currency: str
    destination: str
    idempotency_key: str
    ledger_key: str
    attempt: int
    sequence: int = 1
    bank: BankDestination | None = None


@dataclass(frozen=True)
class PayoutBatch:
    """Payouts sent together: a bank file's entries, or a single Stripe transfer (`batch_id` is then the
    payout's idempotency key)."""

    batch_id: str
    method: str
    created_at: datetime
    week_start: date
    requests: tuple[PayoutRequest, ...]
    timeout_s: float


@dataclass(frozen=True)
class PayoutResult:
    payout_id: uuid.UUID
    outcome: PayoutOutcome
    provider_reference: str = ""
    error: str = ""


class PayoutAdapter(ABC):
    """What a payout method must do. `send` runs outside any database transaction and may block on the
    network for at most `batch.timeout_s` a call; it must send each request's `idempotency_key` to the
    provider and never move money twice for one key, and answer `unknown` (or raise) when the outcome is
    not known, `refused` only for a no the provider would repeat for that key."""

    method: ClassVar[str] = "abstract"
    # True: one call takes the whole batch (a bank file); False: each payout is its own batch of one.
    batched: ClassVar[bool] = False

    @abstractmethod
    def send(self, batch: PayoutBatch) -> list[PayoutResult]: ...


# --- Stripe Connect ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnboardingLink:
    account_id: str
    url: str
    expires_at: datetime


class StripeConnect:
    """The co-op's side of Stripe Connect: Express accounts for drivers, their onboarding links, and
    transfers to them. One `StripeClient` per instance, pointed at `api_base`."""

    def __init__(self, *, api_key: str, api_base: str, timeout_s: float) -> None:
        if not api_key:
            raise ServiceUnavailable(
                _("Stripe payouts are not configured (STRIPE_API_KEY is empty)."),
                code="stripe_not_configured",
            )
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base, "connect": api_base},
            http_client=stripe.HTTPXClient(timeout=timeout_s, allow_sync_methods=True),
            max_network_retries=0,
        )

    @classmethod
    def from_settings(cls) -> StripeConnect:
        return cls(
            api_key=settings.STRIPE_API_KEY,
            api_base=settings.STRIPE_API_BASE,
            timeout_s=settings.ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S,
        )

    def express_account_create(self, *, driver_id: uuid.UUID, country: str) -> str:
        """A new Express account for the driver (idempotent per driver: a repeat returns the same one)."""
        with _provider_unavailable_on_error():
            account = self.client.v1.accounts.create(
                {
                    "type": "express",
                    "country": country,
                    "capabilities": {"transfers": {"requested": True}},
                    "business_type": "individual",
                    "metadata": {"driver_id": str(driver_id)},
                },
                options={"idempotency_key": f"rochdale:connect-account:{driver_id}"},
            )
        return account.id

    def onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> OnboardingLink:
        """A single-use link to Stripe's hosted onboarding (a new one each time: links expire in minutes)."""
        with _provider_unavailable_on_error():
            link = self.client.v1.account_links.create(
                {
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        return OnboardingLink(
            account_id=account_id, url=link.url, expires_at=datetime.fromtimestamp(link.expires_at, tz=UTC)
        )

    def transfer(self, request: PayoutRequest) -> PayoutResult:
        try:
            transfer = self.client.v1.transfers.create(
                {
                    "amount": request.amount_minor,
                    "currency": request.currency.lower(),
                    "destination": request.destination,
                    "transfer_group": request.ledger_key,
                    "description": f"Rochdale payout, week of {request.week_start.isoformat()}",
                    "metadata": {
                        "payout_id": str(request.payout_id),
                        "driver_id": str(request.driver_id),
                        "week_start": request.week_start.isoformat(),
                    },
                },
                options={"idempotency_key": request.idempotency_key},
            )
        except (stripe.CardError, stripe.InvalidRequestError) as error:
            # 402 and 400/404: Stripe processed the request and refused it; it repeats that for this key.
            return PayoutResult(request.payout_id, PayoutOutcome.REFUSED, error=_stripe_error_text(error))
        except stripe.StripeError as error:
            # A timeout or lost connection, 5xx, 429, 409 (the key is busy), an idempotency or auth problem:
            # the transfer may or may not exist, so the retry must carry the same key.
            return PayoutResult(request.payout_id, PayoutOutcome.UNKNOWN, error=_stripe_error_text(error))
        return PayoutResult(request.payout_id, PayoutOutcome.PAID, provider_reference=transfer.id)


@contextlib.contextmanager
def _provider_unavailable_on_error() -> Iterator[None]:
    """Onboarding calls: any Stripe error is the driver's 503 (logged here with Stripe's own words)."""
    try:
        yield
    except stripe.StripeError as error:
        logger.warning("stripe connect call failed: %s", _stripe_error_text(error))
        raise ServiceUnavailable(
            _("Stripe could not set up payouts just now; try again shortly."),
            code="payout_provider_unavailable",
        ) from error


def _stripe_error_text(error: stripe.StripeError) -> str:
    status = f"HTTP {error.http_status} " if error.http_status else ""
    code = f"{error.code}: " if getattr(error, "code", None) else ""
    return f"{type(error).__name__} {status}{code}{error.user_message or error}"[:500]


class StripeConnectAdapter(PayoutAdapter):
    method = STRIPE
    batched = False

    def __init__(self, connect: StripeConnect | None = None) -> None:
        self.connect = connect or StripeConnect.from_settings()

    def send(self, batch: PayoutBatch) -> list[PayoutResult]:
        return [self.connect.transfer(request) for request in batch.requests]


# --- ACH bank file ----------------------------------------------------------------------------------------


def ach_originator_from_settings() -> NachaOriginator:
    config = settings.ROCHDALE_ACH
    missing = sorted(name for name in ("destination_routing_number", "origin_id", "odfi") if not config[name])
    if missing:
        raise Unprocessable(
            _("Bank file payouts are not configured: %(settings)s")
            % {"settings": ", ".join(f"ROCHDALE_ACH_{m.upper()}" for m in missing)},
            code="ach_not_configured",
        )
    return NachaOriginator(
        destination_routing_number=config["destination_routing_number"],
        destination_name=config["destination_name"],
        origin_id=config["origin_id"],
        origin_name=config["origin_name"],
        company_name=config["company_name"],
        company_id=config["company_id"] or config["origin_id"],
        originating_dfi=config["odfi"],
        entry_description=config["entry_description"],
    )


def next_business_day(day: date) -> date:
    """The next weekday after `day` (bank holidays are the bank's to roll forward)."""
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


@dataclass(frozen=True)
class AchFiles:
    nacha: Path
    summary: Path


SUMMARY_COLUMNS = [
    "trace_number",
    "payout_id",
    "driver_id",
    "week_start",
    "holder_name",
    "routing_number",
    "account",
    "account_type",
    "amount",
    "currency",
]


class AchFileAdapter(PayoutAdapter):
    method = ACH
    batched = True

    def __init__(self, *, directory: Path | None = None, originator: NachaOriginator | None = None) -> None:
        self.directory = Path(directory or settings.ROCHDALE_PAYOUT_FILES_DIR)
        self.originator = originator or ach_originator_from_settings()

    def files_for(self, batch_id: str) -> AchFiles:
        return AchFiles(self.directory / f"{batch_id}.ach", self.directory / f"{batch_id}.csv")

    def render(self, batch: PayoutBatch) -> tuple[str, str]:
        """The NACHA file and the CSV summary of a batch (pure: the same batch, the same text)."""
        credits = []
        for request in batch.requests:
            if request.bank is None:
                raise NachaError(f"payout {request.payout_id} has no bank account")
            if request.currency != "USD":
                raise NachaError(f"payout {request.payout_id} is in {request.currency}; ACH pays USD only")
            credits.append(
                NachaCredit(
                    routing_number=request.bank.routing_number,
                    account_number=request.bank.account_number,
                    account_type=request.bank.account_type,
                    amount_minor=request.amount_minor,
                    individual_id=request.driver_id.hex[:15],
                    individual_name=request.bank.holder_name,
                    sequence=request.sequence,
                )
            )
        local_created = timezone.localtime(batch.created_at, local_zone())
        nacha = ppd_credit_file(
            originator=self.originator,
            credits=credits,
            created_at=local_created,
            effective_date=next_business_day(local_created.date()),
            descriptive_date=batch.week_start,
            reference_code=batch.batch_id[-8:],
        )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(SUMMARY_COLUMNS)
        for request in batch.requests:
            assert request.bank is not None
            writer.writerow(
                [
                    self.trace_number(request.sequence),
                    request.payout_id,
                    request.driver_id,
                    request.week_start.isoformat(),
                    request.bank.holder_name,
                    request.bank.routing_number,
                    mask_account_number(request.bank.account_number),
                    request.bank.account_type,
                    minor_to_decimal(request.amount_minor, request.currency),
                    request.currency,
                ]
            )
        total = sum(request.amount_minor for request in batch.requests)
        writer.writerow(
            [
                "total",
                f"{len(batch.requests)} payouts",
                "",
                "",
                "",
                "",
                "",
                "",
                minor_to_decimal(total, "USD"),
                "USD",
            ]
        )
        return nacha, out.getvalue()

    def trace_number(self, sequence: int) -> str:
        return f"{self.originator.originating_dfi}{sequence:07d}"

    def send(self, batch: PayoutBatch) -> list[PayoutResult]:
        try:
            nacha, summary = self.render(batch)
        except NachaError as error:
            return [
                PayoutResult(request.payout_id, PayoutOutcome.REFUSED, error=f"bank file: {error}"[:500])
                for request in batch.requests
            ]
        files = self.files_for(batch.batch_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_private(files.nacha, nacha, encoding="ascii")
        _write_private(files.summary, summary, encoding="utf-8")
        logger.info("bank file %s: %d payouts", files.nacha, len(batch.requests))
        return [
            PayoutResult(
                request.payout_id,
                PayoutOutcome.SUBMITTED,
                provider_reference=f"{batch.batch_id}/{self.trace_number(request.sequence)}",
            )
            for request in batch.requests
        ]


def _write_private(path: Path, text: str, *, encoding: str) -> None:
    """Write atomically (a reader never sees half a file) and readable by the owner only.

    Each writer has its own temporary file (mkstemp: a unique name, mode 600), because two payout runs may
    re-send one batch at once: with one shared temporary name, the second writer's rename found the file
    already renamed by the first. The batch's text is the same for both, so whichever renames last wins."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# --- Registry ---------------------------------------------------------------------------------------------

_ADAPTERS: dict[str, Callable[[], PayoutAdapter]] = {STRIPE: StripeConnectAdapter, ACH: AchFileAdapter}


def register_payout_adapter(name: str, factory: Callable[[], PayoutAdapter]) -> None:
    _ADAPTERS[name] = factory


def payout_adapter(method: str) -> PayoutAdapter:
    try:
        factory = _ADAPTERS[method]
    except KeyError:
        raise Unprocessable(
            _("No payout method %(method)r.") % {"method": method}, code="unknown_payout_method"
        ) from None
    return factory()


def payout_methods() -> Sequence[str]:
    return tuple(_ADAPTERS)
