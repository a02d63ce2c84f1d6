"""Role gates of the API, in one style: DRF permission classes on the view (`permission_classes`).

DRF checks them before the handler runs, so a caller without the role is refused before any id in the
path is looked up: the refusal is the same for an id that exists and one that does not, and reveals
nothing. Whether a given object is the caller's (their trip, their statement) is not a role: selectors
answer that, and what a caller may not see answers 404 as if it did not exist.

An anonymous caller fails every gate as DRF does (401 `not_authenticated`). A signed-in caller without the
role gets 403 with the gate's `code`, the contract's name for that refusal on those routes; the gate raises
it as a domain error so the exception handler (mobile_api/errors.py) keeps the code, and the schema
(mobile_api/schema/autoschema.py) documents the same `code` for every route behind the gate.
"""

from __future__ import annotations

from typing import ClassVar

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from backend.errors import PermissionDenied
from governance import selectors as governance_selectors


class RoleGate(BasePermission):
    """Signed-in callers holding a role; subclasses say which (`has_role`) and how the refusal reads."""

    code: ClassVar[str] = "permission_denied"
    message: ClassVar[str] = "You do not have permission to perform this action."

    def has_role(self, request: Request) -> bool:
        raise NotImplementedError

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not request.user.is_authenticated:
            return False  # DRF answers 401, as for any route that needs a signed-in user
        if not self.has_role(request):
            raise PermissionDenied(self.message, code=self.code)
        return True


class IsStaff(RoleGate):
    """Staff accounts (`is_staff`): the staff routes of accounts, trips and payments."""

    def has_role(self, request: Request) -> bool:
        return bool(request.user.is_staff)


class IsStaffOnly(IsStaff):
    """Staff, on the routes whose refusal is named `staff_only` (the contract's for governance's staff
    routes; refunds and the regulator's reports answer the same), before any id is looked at."""

    code = "staff_only"
    message = "Only staff may do this."


class IsDriver(RoleGate):
    """Driver accounts: the driver app's routes."""

    code = "driver_role_required"
    message = "Only a driver account can do this."

    def has_role(self, request: Request) -> bool:
        return bool(request.user.is_driver)


class HasEarnings(IsDriver):
    """Drivers, on the earnings routes, whose refusal has always been the generic `permission_denied`
    (docs/contract.md names `driver_role_required` for the driver routes; the earnings answer is kept as
    clients and tests know it)."""

    code = "permission_denied"
    message = "Only drivers have earnings."


class IsMemberOrStaff(RoleGate):
    """Members of the co-operative (any status but withdrawn) and staff: who may read governance records."""

    code = "not_a_member"
    message = "Only members of the co-operative may see this."

    def has_role(self, request: Request) -> bool:
        return bool(request.user.is_staff) or governance_selectors.current_member(request.user) is not None


class IsMemberOrStaffVoting(IsMemberOrStaff):
    """Members and staff, on the proposal vote route, whose refusal the contract names `not_eligible`
    (whether this member may vote on this proposal is the service's to say, with the same code)."""

    code = "not_eligible"
    message = "Only eligible members may vote on this proposal."
