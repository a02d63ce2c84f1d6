"""Output fields every serializer of the API shares: timestamps in the one wire format, money from a row's
minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backend.fares.money import money
from backend.timestamps import wire_timestamp
from dispatch.serializers import MoneySerializer


class Timestamp(serializers.DateTimeField):
    """An output timestamp in the contract's one format, UTC with a `Z` (backend/timestamps.py), whatever
    TIME_ZONE is (DRF's own field would answer in the local zone)."""

    def to_representation(self, value: datetime | str | None) -> str | None:
        if value is None or isinstance(value, str):  # a string is already on the wire
            return value
        return wire_timestamp(value)


@extend_schema_field(MoneySerializer)
class MinorMoney(serializers.Field):
    """`{"amount", "currency"}` from a row's integer minor units and currency: `MinorMoney("fare_minor")`."""

    def __init__(self, amount: str, *, currency: str = "currency", **kwargs: Any) -> None:
        self.amount_attribute = amount
        self.currency_attribute = currency
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> dict[str, Any] | None:
        amount = getattr(value, self.amount_attribute)
        if amount is None:
            return None
        return dict(money(amount, getattr(value, self.currency_attribute)))
