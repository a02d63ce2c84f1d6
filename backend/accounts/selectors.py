"""Reads on accounts: a user's roles (their own flags plus what governance makes true) and profile."""

from __future__ import annotations

import logging
from typing import Any

from backend.accounts.models import DriverProfile, User

logger = logging.getLogger(__name__)


def _governance_selectors() -> Any | None:
    """governance.selectors, or None while that module does not exist yet."""
    try:
        from governance import selectors
    except ImportError:
        return None
    return selectors


def user_roles(user: User) -> list[str]:
    """`rider`, `driver`, `staff` from the account, plus `member` and `director` from governance."""
    roles = list(user.base_roles)
    selectors = _governance_selectors()
    governance_roles = getattr(selectors, "user_governance_roles", None) if selectors else None
    if governance_roles is not None:
        roles.extend(role for role in governance_roles(user) if role not in roles)
    return roles


def user_membership(user: User) -> dict[str, Any] | None:
    selectors = _governance_selectors()
    summary = getattr(selectors, "membership_summary", None) if selectors else None
    return summary(user) if summary is not None else None


def driver_status_of(user: User) -> str | None:
    if not user.is_driver:
        return None
    profile = DriverProfile.objects.filter(user_id=user.pk).only("status").first()
    return profile.status if profile is not None else None


def user_account(user: User, *, with_governance: bool = True) -> dict[str, Any]:
    """The contract's account object: `{"id", "phone", "name", "roles", "driver_status"?, "member"?}`."""
    body: dict[str, Any] = {
        "id": str(user.pk),
        "phone": user.phone,
        "name": user.name,
        "roles": user_roles(user) if with_governance else list(user.base_roles),
    }
    status = driver_status_of(user)
    if status is not None:
        body["driver_status"] = status
    if with_governance:
        member = user_membership(user)
        if member is not None:
            body["member"] = member
    return body
