"""Reads on accounts: the account object as the account itself knows it (its own role flags, the driver's
status). Member and director come from governance, which builds on accounts: the transport composes the
two for `GET /me` (mobile_api/accounts.py)."""

from __future__ import annotations

from typing import Any

from backend.accounts.models import DriverProfile, User


def driver_status_of(user: User) -> str | None:
    if not user.is_driver:
        return None
    profile = DriverProfile.objects.filter(user_id=user.pk).only("status").first()
    return profile.status if profile is not None else None


def user_account(user: User) -> dict[str, Any]:
    """The contract's account object without what governance adds: `{"id", "phone", "name", "email",
    "roles", "driver_status"?}`, roles being `rider`, `driver`, `staff` from the account's flags (`email`
    is an extension: the account's own address, "" when none; only its owner and staff see this object)."""
    body: dict[str, Any] = {
        "id": str(user.pk),
        "phone": user.phone,
        "name": user.name,
        "email": user.email,
        "language": user.language,
        "roles": list(user.base_roles),
    }
    status = driver_status_of(user)
    if status is not None:
        body["driver_status"] = status
    return body
