"""Reads on organisations, scoped to who may see them.

An organisation exists, for a caller, only if they are an active member of it, an API key of it, or staff:
anyone else gets NotFound `organisation_not_found`, exactly as for an id that does not exist. Inside an
organisation, what a member may do depends on their role (`ADMIN_ROLES`, `BOOKER_ROLES`); people, guests
and keys of one organisation are looked up only within it, so an id of another organisation's answers as
one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from django.db.models import QuerySet

from backend.accounts.models import User
from backend.errors import NotFound, PermissionDenied
from backend.organisations.models import (
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationMembership,
    OrganisationRole,
)

ADMIN_ROLES = frozenset({OrganisationRole.ADMIN})
BOOKER_ROLES = frozenset({OrganisationRole.ADMIN, OrganisationRole.COORDINATOR})


def _not_found() -> NotFound:
    return NotFound("No such organisation.", code="organisation_not_found")


def organisations_all() -> QuerySet[Organisation]:
    return Organisation.objects.order_by("name")


def organisation_get(*, organisation_id: uuid.UUID) -> Organisation:
    """Any organisation, active or not (staff); NotFound `organisation_not_found`."""
    organisation = Organisation.objects.filter(id=organisation_id).first()
    if organisation is None:
        raise _not_found()
    return organisation


def active_membership(*, user_id: uuid.UUID, organisation_id: uuid.UUID) -> OrganisationMembership | None:
    """The user's active membership of an active organisation, with the organisation loaded."""
    return (
        OrganisationMembership.objects.select_related("organisation")
        .filter(
            user_id=user_id, organisation_id=organisation_id, is_active=True, organisation__is_active=True
        )
        .first()
    )


def organisation_of_member(
    *, user_id: uuid.UUID, organisation_id: uuid.UUID
) -> tuple[Organisation, OrganisationMembership]:
    """The organisation and the user's membership of it; NotFound `organisation_not_found` for a user who
    is not an active member (and for an organisation that does not exist or is inactive)."""
    membership = active_membership(user_id=user_id, organisation_id=organisation_id)
    if membership is None:
        raise _not_found()
    return membership.organisation, membership


def memberships_of(*, user_id: uuid.UUID) -> QuerySet[OrganisationMembership]:
    """The user's active memberships of active organisations, oldest first."""
    return (
        OrganisationMembership.objects.select_related("organisation")
        .filter(user_id=user_id, is_active=True, organisation__is_active=True)
        .order_by("created_at", "id")
    )


def members_of(
    *, organisation_id: uuid.UUID, roles: Collection[str] | None = None
) -> QuerySet[OrganisationMembership]:
    members = OrganisationMembership.objects.select_related("user").filter(
        organisation_id=organisation_id, is_active=True
    )
    if roles is not None:
        members = members.filter(role__in=sorted(roles))
    return members.order_by("created_at", "id")


def guests_of(*, organisation_id: uuid.UUID) -> QuerySet[OrganisationGuest]:
    return OrganisationGuest.objects.filter(organisation_id=organisation_id).order_by("name", "id")


def guest_get(*, organisation_id: uuid.UUID, guest_id: uuid.UUID) -> OrganisationGuest:
    """One of the organisation's guests; NotFound `guest_not_found` (another organisation's guest too)."""
    guest = OrganisationGuest.objects.filter(organisation_id=organisation_id, id=guest_id).first()
    if guest is None:
        raise NotFound("No such guest.", code="guest_not_found")
    return guest


def api_keys_of(*, organisation_id: uuid.UUID) -> QuerySet[OrganisationApiKey]:
    """Every key of the organisation, revoked ones too (newest first): a revoked key stays on record."""
    return OrganisationApiKey.objects.filter(organisation_id=organisation_id).order_by("-created_at", "id")


def _organisation_for_role(
    *, organisation_id: uuid.UUID, user: User, roles: frozenset[str], refusal: PermissionDenied
) -> Organisation:
    if user.is_staff:
        return organisation_get(organisation_id=organisation_id)
    organisation, membership = organisation_of_member(user_id=user.pk, organisation_id=organisation_id)
    if membership.role not in roles:
        raise refusal
    return organisation


def organisation_for_admin(*, organisation_id: uuid.UUID, user: User) -> Organisation:
    """The organisation, if `user` may manage it (an active admin of it, or staff). NotFound for anyone
    outside it; PermissionDenied `organisation_admin_required` for its members without the role."""
    return _organisation_for_role(
        organisation_id=organisation_id,
        user=user,
        roles=ADMIN_ROLES,
        refusal=PermissionDenied(
            "Only the organisation's admins may do this.", code="organisation_admin_required"
        ),
    )


def organisation_for_booker(*, organisation_id: uuid.UUID, user: User) -> Organisation:
    """The organisation, if `user` books for it (an active admin or coordinator, or staff). NotFound for
    anyone outside it; PermissionDenied `organisation_booking_not_allowed` for its riders."""
    return _organisation_for_role(
        organisation_id=organisation_id,
        user=user,
        roles=BOOKER_ROLES,
        refusal=PermissionDenied(
            "You may not book rides for this organisation.", code="organisation_booking_not_allowed"
        ),
    )
