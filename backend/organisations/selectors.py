"""Reads on organisations, scoped to who may see them.

An organisation exists, for a caller, only if they are an active member of it, an API key of it, or staff:
anyone else gets NotFound `organisation_not_found`, exactly as for an id that does not exist. Inside an
organisation, what a member may do depends on their role (`ADMIN_ROLES`, `BOOKER_ROLES`); people, guests
and keys of one organisation are looked up only within it, so an id of another organisation's answers as
one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import NotFound, PermissionDenied
from backend.organisations.models import (
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationInvitation,
    OrganisationMembership,
    OrganisationRole,
)

ADMIN_ROLES = frozenset({OrganisationRole.ADMIN})
BOOKER_ROLES = frozenset({OrganisationRole.ADMIN, OrganisationRole.COORDINATOR})


def _not_found() -> NotFound:
    return NotFound(_("No such organisation."), code="organisation_not_found")


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
        raise NotFound(_("No such guest."), code="guest_not_found")
    return guest


@dataclass(frozen=True)
class KnownRider:
    """A trip's rider as the organisation knows them: its guest (`id` the guest's, `name` as it gave it) or
    its member (`id` the account's, which it adds members by, and the member's name)."""

    kind: str  # "guest" | "member"
    id: uuid.UUID
    name: str


def riders_as_known(
    *, organisation_id: uuid.UUID, rider_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, KnownRider]:
    """Each rider of the organisation's trips as it knows them; the guest row first (what it entered),
    then the membership (also a former one). A rider it knows neither way is left out."""
    wanted = set(rider_ids)
    known: dict[uuid.UUID, KnownRider] = {}
    for membership in OrganisationMembership.objects.select_related("user").filter(
        organisation_id=organisation_id, user_id__in=wanted
    ):
        user = membership.user
        known[user.pk] = KnownRider(kind="member", id=user.pk, name=user.name)
    for guest in OrganisationGuest.objects.filter(organisation_id=organisation_id, user_id__in=wanted):
        known[guest.user_id] = KnownRider(kind="guest", id=guest.id, name=guest.name)
    return known


def organisations_of_person(*, user: User) -> QuerySet[Organisation]:
    """The active organisations the person is in, may ride for as a guest, or is invited to (as a member
    by their phone, or as a guest of their account)."""
    member = OrganisationMembership.objects.filter(organisation=OuterRef("pk"), user=user, is_active=True)
    guest = OrganisationGuest.objects.filter(organisation=OuterRef("pk"), user=user)
    invited = OrganisationInvitation.objects.filter(organisation=OuterRef("pk"), phone=user.phone)
    return Organisation.objects.filter(
        Q(Exists(member)) | Q(Exists(guest)) | Q(Exists(invited)), is_active=True
    )


@dataclass(frozen=True)
class PersonInOrganisation:
    """What `organisations_of_person` knows of one organisation for the person: their role (None when
    not a member), whether it may book for them as its guest, and what waits for their yes."""

    role: str | None
    guest: bool
    invitations: list[dict[str, str | None]]


def person_in_organisations(
    *, user: User, organisation_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, PersonInOrganisation]:
    ids = set(organisation_ids)
    roles = dict(
        OrganisationMembership.objects.filter(user=user, is_active=True, organisation_id__in=ids).values_list(
            "organisation_id", "role"
        )
    )
    guests = dict(
        OrganisationGuest.objects.filter(user=user, organisation_id__in=ids).values_list(
            "organisation_id", "confirmed_at"
        )
    )
    invited = dict(
        OrganisationInvitation.objects.filter(phone=user.phone, organisation_id__in=ids).values_list(
            "organisation_id", "role"
        )
    )
    answer = {}
    for organisation_id in ids:
        waiting: list[dict[str, str | None]] = []
        if organisation_id in invited:
            waiting.append({"kind": "membership", "role": invited[organisation_id]})
        if organisation_id in guests and guests[organisation_id] is None:
            waiting.append({"kind": "guest", "role": None})
        answer[organisation_id] = PersonInOrganisation(
            role=roles.get(organisation_id),
            guest=guests.get(organisation_id) is not None,
            invitations=waiting,
        )
    return answer


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
            _("Only the organisation's admins may do this."), code="organisation_admin_required"
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
            _("You may not book rides for this organisation."), code="organisation_booking_not_allowed"
        ),
    )
