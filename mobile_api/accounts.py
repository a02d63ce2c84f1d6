"""The contract's account object (`GET /me`, registration, driver approval), composed in the transport from
the account's own selectors and governance's: accounts is below governance and never imports it."""

from __future__ import annotations

from typing import Any

from backend.accounts.models import User
from backend.accounts.selectors import user_account
from governance.selectors import membership_summary, user_governance_roles


def account_document(user: User) -> dict[str, Any]:
    """`{"id", "phone", "name", "roles", "driver_status"?, "member"?}`: the account's roles plus `member` and
    `director` from governance, and the membership summary for a member."""
    body = user_account(user)
    body["roles"] += [role for role in user_governance_roles(user) if role not in body["roles"]]
    member = membership_summary(user)
    if member is not None:
        body["member"] = member
    return body
