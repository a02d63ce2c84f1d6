"""Writes on organisations: the organisation and its booking policy (staff), its people (its admins), its
guests (its bookers), and its API keys (its admins). docs/organisations.md.

Who may do what is checked here, on every call, with the selectors' rule: someone who is not in the
organisation is told it does not exist (NotFound `organisation_not_found`); a member without the role is
refused (PermissionDenied `organisation_admin_required`, `organisation_booking_not_allowed`). Staff may act
as an admin of any organisation (to set one up and hand it over).

Nobody is bound to an organisation without saying yes, and the organisation learns nothing of anyone's
account from its own calls (docs/organisations.md, "Consent"):
- A guest is a rider the organisation knows by name and phone. A phone with no account gets a new rider
  account with no usable password (a guest account: nobody can sign in to it; the person hears about their
  rides by SMS and follows them at a signed link, backend/organisations/guest_links.py), and the guest
  rides at once. A phone whose account is somebody's own (anything but a guest account this flow made)
  gets a guest row that waits (`confirmed_at` null): the account's roles are not touched, its holder is
  asked (`organisation_guest_invite`) and accepts or declines (`guest_accept`, `guest_decline`); the
  organisation books nothing for them until then (backend/organisations/booking.py). The answer is the
  same either way: the guest as the organisation gave it.
- An admin adds a person by phone as an invitation (`OrganisationInvitation`), the same way whether or not
  the phone has an account; its holder is asked (`organisation_member_invite`) and accepts
  (`invitation_accept`: the membership) or declines. Staff, who set organisations up, add people directly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.accounts.phones import normalize_phone
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unprocessable
from backend.fares.selectors import policy_in_force
from backend.notifications.services import notify
from backend.organisations.keys import api_key_generate
from backend.organisations.models import (
    ApiKeyScope,
    BookingRule,
    Organisation,
    OrganisationApiKey,
    OrganisationGuest,
    OrganisationInvitation,
    OrganisationKind,
    OrganisationMembership,
    OrganisationRole,
)
from backend.organisations.rules import allowed_hours_problems
from backend.organisations.selectors import (
    ADMIN_ROLES,
    organisation_for_admin,
    organisation_for_booker,
)

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 160
GUEST_NAME_MAX_LENGTH = 120
KEY_NAME_MAX_LENGTH = 80
ADDRESS_MAX_LENGTH = 2000
MAX_PAYMENT_TERMS_DAYS = 365
# What staff may set on an organisation (nothing else of a body reaches the row).
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "is_active",
        "billing_email",
        "billing_address",
        "payment_terms_days",
        "allowed_hours",
        "allowed_area",
        "max_fare",
        "wav_allowed",
        "booking_rule",
        "reference_required",
    }
)


def _invalid(field: str, message: str, *, code: str = "invalid_input") -> InvalidInput:
    return InvalidInput(_("Some fields are missing or not valid."), code=code, details={field: [message]})


def _require_staff(by: User) -> None:
    if not by.is_staff:
        raise PermissionDenied(_("Only staff may do this."), code="permission_denied")


# --- The organisation and its policy (staff) ----------------------------------------------------------------


def _area(value: object) -> MultiPolygon | None:
    if value is None:
        return None
    if isinstance(value, Polygon):
        value = MultiPolygon(value, srid=value.srid or 4326)
    if not isinstance(value, MultiPolygon):
        raise _invalid("allowed_area", "Must be a Polygon or MultiPolygon.")
    if value.srid is None:
        value.srid = 4326
    if value.srid != 4326 or not value.valid or value.empty:
        raise _invalid("allowed_area", "Must be a valid, non-empty WGS 84 polygon.")
    return value


def _max_fare(value: object, *, currency: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid("max_fare", 'Must be {"amount": minor units, "currency"} or null.')
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise _invalid("max_fare", "The amount is a whole number of minor units, 0 or more.")
    if value.get("currency") != currency:
        raise Unprocessable(
            _("This organisation is billed in %(currency)s.") % {"currency": currency},
            code="currency_mismatch",
            details={"currency": currency},
        )
    return amount


def _boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _invalid(field, "Must be true or false.")
    return value


def _apply(organisation: Organisation, changes: Mapping[str, Any]) -> list[str]:
    """Validate and set the changed fields; returns the model fields written."""
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(
            _("Some fields cannot be set."), details={name: ["Cannot be set."] for name in unknown}
        )
    written: list[str] = []
    for field, value in changes.items():
        if field == "name":
            name = value.strip() if isinstance(value, str) else ""
            if not name or len(name) > NAME_MAX_LENGTH:
                raise _invalid("name", f"1 to {NAME_MAX_LENGTH} characters.")
            organisation.name = name
        elif field == "kind":
            if value not in OrganisationKind.values:
                raise _invalid("kind", f"One of: {', '.join(OrganisationKind.values)}.")
            organisation.kind = value
        elif field == "booking_rule":
            if value not in BookingRule.values:
                raise _invalid("booking_rule", f"One of: {', '.join(BookingRule.values)}.")
            organisation.booking_rule = value
        elif field in ("is_active", "wav_allowed", "reference_required"):
            setattr(organisation, field, _boolean(field, value))
        elif field == "billing_email":
            address = value.strip() if isinstance(value, str) else None
            if address is None:
                raise _invalid("billing_email", "Must be an email address or empty.")
            if address:
                try:
                    validate_email(address)
                except ValidationError as exc:
                    raise _invalid("billing_email", "This is not an email address.") from exc
            organisation.billing_email = address
        elif field == "billing_address":
            if not isinstance(value, str) or len(value) > ADDRESS_MAX_LENGTH:
                raise _invalid("billing_address", f"Text of at most {ADDRESS_MAX_LENGTH} characters.")
            organisation.billing_address = value
        elif field == "payment_terms_days":
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= MAX_PAYMENT_TERMS_DAYS
            ):
                raise _invalid("payment_terms_days", f"0 to {MAX_PAYMENT_TERMS_DAYS} days.")
            organisation.payment_terms_days = value
        elif field == "allowed_hours":
            problems = allowed_hours_problems(value)
            if problems:
                raise InvalidInput(
                    _("The allowed hours are not valid."),
                    code="allowed_hours_invalid",
                    details={"allowed_hours": problems},
                )
            organisation.allowed_hours = value
        elif field == "allowed_area":
            organisation.allowed_area = _area(value)
        elif field == "max_fare":
            organisation.max_fare_minor = _max_fare(value, currency=organisation.currency)
            field = "max_fare_minor"
        written.append(field)
    return written


def _save(organisation: Organisation, *, update_fields: list[str] | None = None) -> Organisation:
    try:
        with transaction.atomic():
            organisation.save(update_fields=update_fields)
    except IntegrityError as exc:
        if Organisation.objects.filter(name=organisation.name).exclude(id=organisation.id).exists():
            raise Conflict(
                _("An organisation with this name exists already."), code="organisation_name_taken"
            ) from exc
        raise
    return organisation


def organisation_create(*, by: User, name: str, changes: Mapping[str, Any] | None = None) -> Organisation:
    """Staff create an organisation, billed in the currency of the fare policy in force, with whatever of
    EDITABLE_FIELDS `changes` sets (its policy starts open: any time, anywhere, any fare).
    Raises PermissionDenied, InvalidInput (`allowed_hours_invalid` too), Unprocessable `currency_mismatch`,
    Conflict `organisation_name_taken`."""
    _require_staff(by)
    organisation = Organisation(currency=policy_in_force().currency)
    _apply(organisation, {**(changes or {}), "name": name})
    _save(organisation)
    logger.info("organisation %s created by %s", organisation.id, by.pk)
    return organisation


def organisation_update(*, organisation_id: uuid.UUID, by: User, changes: Mapping[str, Any]) -> Organisation:
    """Staff change an organisation's details and booking policy (only EDITABLE_FIELDS). Bookings made
    before keep what they were booked under; the next booking is checked against the new policy."""
    _require_staff(by)
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().filter(id=organisation_id).first()
        if organisation is None:
            raise NotFound(_("No such organisation."), code="organisation_not_found")
        written = _apply(organisation, changes)
        if written:
            _save(organisation, update_fields=written)
    logger.info("organisation %s updated by %s: %s", organisation.id, by.pk, ", ".join(written))
    return organisation


# --- People (its admins) ------------------------------------------------------------------------------------


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except ValidationError as exc:
        raise InvalidInput(
            _("Enter the phone number in international E.164 form, e.g. +12125550100."),
            code="phone_invalid",
            details={"phone": [str(exc.messages[0])]},
        ) from exc


class MemberStatus:
    INVITED = "invited"
    ACTIVE = "active"


@dataclass(frozen=True)
class MemberAdded:
    """What an admin is told of adding someone: what they sent, and whether it is an invitation (`id` is
    the invitation's) or a change to a member they already have (`id` None). Nothing of any account."""

    id: uuid.UUID | None
    phone: str
    role: str
    status: str
    created_at: datetime


def member_add(*, organisation_id: uuid.UUID, by: User, phone: str, role: str) -> MemberAdded:
    """An admin adds the person with this phone to the organisation, or gives a member a new role.

    The phone of one of its active members: the role changes at once (Conflict `last_admin` when that
    would leave no admin). Any other phone, with an account or not: an invitation in that role (the same
    phone again is the same invitation, its role updated), and the account with the phone, if there is an
    active one, is asked once (`organisation_member_invite`); it becomes a member when it accepts
    (`invitation_accept`). The answer is the same with or without an account.

    Staff (who set organisations up and hand them over) add the account directly: Unprocessable
    `account_not_found`, `rider_role_required` (a rider membership needs a rider account).
    Raises InvalidInput `phone_invalid`."""
    if role not in OrganisationRole.values:
        raise _invalid("role", f"One of: {', '.join(OrganisationRole.values)}.")
    normalized = _phone(phone)
    with transaction.atomic():
        organisation = organisation_for_admin(organisation_id=organisation_id, user=by)
        # One people change at a time per organisation (the last admin stays).
        Organisation.objects.select_for_update().filter(id=organisation.id).first()
        user = User.objects.filter(phone=normalized, is_active=True).first()
        membership = (
            OrganisationMembership.objects.filter(organisation=organisation, user=user).first()
            if user is not None
            else None
        )
        if by.is_staff:
            membership = _member_add_directly(organisation, user=user, membership=membership, role=role)
        elif membership is not None and membership.is_active:
            _role_change(organisation, membership, role=role)
        else:
            invitation = _invite(organisation, by=by, phone=normalized, role=role, user=user)
            logger.info(
                "organisation %s: %s invited as %s (by %s)", organisation.id, invitation.id, role, by.pk
            )
            return MemberAdded(
                id=invitation.id,
                phone=normalized,
                role=role,
                status=MemberStatus.INVITED,
                created_at=invitation.created_at,
            )
    logger.info("organisation %s: %s is %s (by %s)", organisation.id, membership.user_id, role, by.pk)
    return MemberAdded(
        id=None, phone=normalized, role=role, status=MemberStatus.ACTIVE, created_at=membership.created_at
    )


def _role_change(organisation: Organisation, membership: OrganisationMembership, *, role: str) -> None:
    if membership.is_active and membership.role in ADMIN_ROLES and role not in ADMIN_ROLES:
        _refuse_if_last_admin(organisation, leaving=membership)
    membership.role = role
    membership.is_active = True
    membership.save(update_fields=["role", "is_active"])


def _member_add_directly(
    organisation: Organisation, *, user: User | None, membership: OrganisationMembership | None, role: str
) -> OrganisationMembership:
    if user is None:
        raise Unprocessable(
            _("No Rochdale account has this phone; they sign up in the app first, or book them as a guest."),
            code="account_not_found",
        )
    if role == OrganisationRole.RIDER and not user.is_rider:
        raise Unprocessable(_("Riders of an organisation need a rider account."), code="rider_role_required")
    OrganisationInvitation.objects.filter(organisation=organisation, phone=user.phone).delete()
    if membership is None:
        return OrganisationMembership.objects.create(organisation=organisation, user=user, role=role)
    _role_change(organisation, membership, role=role)
    return membership


def _invite(
    organisation: Organisation, *, by: User, phone: str, role: str, user: User | None
) -> OrganisationInvitation:
    invitation, made = OrganisationInvitation.objects.get_or_create(
        organisation=organisation, phone=phone, defaults={"role": role, "invited_by": by}
    )
    if not made and invitation.role != role:
        invitation.role = role
        invitation.save(update_fields=["role"])
    if user is not None:
        notify(
            user_id=user.pk,
            event="organisation_member_invite",
            context={"organisation": organisation.name, "role": role},
            # Asked once per organisation: an admin inviting again, or after a no, sends nothing more.
            dedup_key=f"organisation_member_invite:{organisation.id}:{user.pk}",
        )
    return invitation


def _invitation_for(*, user: User, organisation_id: uuid.UUID) -> OrganisationInvitation:
    invitation = (
        OrganisationInvitation.objects.select_for_update()
        .select_related("organisation")
        .filter(organisation_id=organisation_id, organisation__is_active=True, phone=user.phone)
        .first()
    )
    if invitation is None:
        raise NotFound(
            _("No invitation of this organisation is waiting for you."), code="invitation_not_found"
        )
    return invitation


def invitation_accept(*, user: User, organisation_id: uuid.UUID) -> OrganisationMembership:
    """The holder of the invited phone joins the organisation in the invited role (a rider membership
    makes the account a rider). Raises NotFound `invitation_not_found` (none for their phone, as for an
    organisation that does not exist), Conflict `last_admin`."""
    with transaction.atomic():
        Organisation.objects.select_for_update().filter(id=organisation_id).first()
        invitation = _invitation_for(user=user, organisation_id=organisation_id)
        organisation = invitation.organisation
        if invitation.role == OrganisationRole.RIDER and not user.is_rider:
            User.objects.filter(pk=user.pk).update(is_rider=True)
            user.is_rider = True
        membership = OrganisationMembership.objects.filter(organisation=organisation, user=user).first()
        if membership is None:
            membership = OrganisationMembership.objects.create(
                organisation=organisation, user=user, role=invitation.role
            )
        else:
            _role_change(organisation, membership, role=invitation.role)
        invitation.delete()
    logger.info("organisation %s: %s accepted (%s)", organisation_id, user.pk, membership.role)
    return membership


def invitation_decline(*, user: User, organisation_id: uuid.UUID) -> None:
    """The holder of the invited phone says no: the invitation goes. NotFound `invitation_not_found`."""
    with transaction.atomic():
        _invitation_for(user=user, organisation_id=organisation_id).delete()
    logger.info("organisation %s: %s declined an invitation", organisation_id, user.pk)


def _refuse_if_last_admin(organisation: Organisation, *, leaving: OrganisationMembership) -> None:
    others = (
        OrganisationMembership.objects.filter(
            organisation=organisation, is_active=True, role__in=sorted(ADMIN_ROLES)
        )
        .exclude(id=leaving.id)
        .exists()
    )
    if not others:
        raise Conflict(
            _("An organisation keeps at least one admin; make someone else admin first."), code="last_admin"
        )


def member_remove(*, organisation_id: uuid.UUID, by: User, user_id: uuid.UUID) -> None:
    """An admin takes someone out of the organisation (the membership is kept, inactive, for the record of
    the trips they booked). Raises NotFound `member_not_found`, Conflict `last_admin`."""
    with transaction.atomic():
        organisation = organisation_for_admin(organisation_id=organisation_id, user=by)
        # One admin change at a time per organisation, so two admins cannot remove each other at once.
        Organisation.objects.select_for_update().filter(id=organisation.id).first()
        membership = OrganisationMembership.objects.filter(
            organisation=organisation, user_id=user_id, is_active=True
        ).first()
        if membership is None:
            raise NotFound(_("No such member."), code="member_not_found")
        if membership.role in ADMIN_ROLES:
            _refuse_if_last_admin(organisation, leaving=membership)
        membership.is_active = False
        membership.save(update_fields=["is_active"])
    logger.info("organisation %s: %s removed (by %s)", organisation.id, user_id, by.pk)


# --- Guests (its bookers) -----------------------------------------------------------------------------------


def _organisation_for_booker(
    *, organisation_id: uuid.UUID, by: User | None, by_key_id: uuid.UUID | None
) -> Organisation:
    refused = PermissionDenied(
        _("You may not book rides for this organisation."), code="organisation_booking_not_allowed"
    )
    if by_key_id is not None:
        key = (
            OrganisationApiKey.objects.select_related("organisation")
            .filter(id=by_key_id, organisation_id=organisation_id, revoked_at__isnull=True)
            .first()
        )
        if key is None or not key.organisation.is_active:
            raise NotFound(_("No such organisation."), code="organisation_not_found")
        if ApiKeyScope.TRIPS_WRITE.value not in key.scopes:
            raise refused
        return key.organisation
    if by is None:
        raise refused
    return organisation_for_booker(organisation_id=organisation_id, user=by)


def _is_guest_account(user: User) -> bool:
    """A rider account this flow made for a guest and nobody has made their own since: active, no usable
    password, neither driver nor staff. Every other account is somebody's own."""
    return (
        user.is_active
        and not user.has_usable_password()
        and not user.is_driver
        and not user.is_staff
        and OrganisationGuest.objects.filter(user=user, account_created=True).exists()
    )


def _guest_account(*, phone: str, name: str) -> tuple[User, bool]:
    """The account a guest with this phone rides as, and whether this call made it: a new rider account
    nobody can sign in to (no usable password) when the phone has none. Nothing of an existing one is
    changed."""
    user = User.objects.select_for_update().filter(phone=phone).first()
    if user is not None:
        return user, False
    try:
        with transaction.atomic():
            return User.objects.create_user(phone, None, name=name, is_rider=True), True
    except IntegrityError:
        # Someone made the account between our look and our write (phone is unique): it is theirs.
        return User.objects.select_for_update().get(phone=phone), False


def guest_add(
    *,
    organisation_id: uuid.UUID,
    name: str,
    phone: str,
    by: User | None = None,
    by_key_id: uuid.UUID | None = None,
) -> OrganisationGuest:
    """A booker of the organisation (an admin or coordinator, staff, or an API key with `trips:write`)
    adds a guest: someone it books for who need not have the app. The same phone twice is the same guest
    (its name as the organisation knows it is updated).

    A phone with no account, or with a guest account (`_is_guest_account`): the guest rides at once. A
    phone of somebody's own account (active or not): the guest waits for its holder (`confirmed_at` null),
    who is asked once (`organisation_guest_invite`; an inactive account hears nothing) and accepts with
    `guest_accept`; the account's roles are untouched. The row answers the same either way.
    Raises InvalidInput `phone_invalid`, and the booker refusals."""
    clean_name = name.strip() if isinstance(name, str) else ""
    if not clean_name or len(clean_name) > GUEST_NAME_MAX_LENGTH:
        raise _invalid("name", f"1 to {GUEST_NAME_MAX_LENGTH} characters.")
    normalized = _phone(phone)
    with transaction.atomic():
        organisation = _organisation_for_booker(organisation_id=organisation_id, by=by, by_key_id=by_key_id)
        user, made = _guest_account(phone=normalized, name=clean_name)
        guest = OrganisationGuest.objects.filter(organisation=organisation, user=user).first()
        if guest is None:
            waits = not made and not _is_guest_account(user)
            try:
                with transaction.atomic():
                    guest = OrganisationGuest.objects.create(
                        organisation=organisation,
                        user=user,
                        name=clean_name,
                        phone=normalized,
                        created_by=by,
                        account_created=made,
                        confirmed_at=None if waits else timezone.now(),
                    )
            except IntegrityError:
                guest = OrganisationGuest.objects.get(organisation=organisation, user=user)
            else:
                if waits:
                    notify(
                        user_id=user.pk,
                        event="organisation_guest_invite",
                        context={"organisation": organisation.name},
                        # Asked once per organisation: added again, or after a no, it sends nothing more.
                        dedup_key=f"organisation_guest_invite:{organisation.id}:{user.pk}",
                    )
        if guest.name != clean_name or guest.phone != normalized:
            guest.name = clean_name
            guest.phone = normalized
            guest.save(update_fields=["name", "phone"])
    return guest


def _guest_of(*, user: User, organisation_id: uuid.UUID) -> OrganisationGuest:
    guest = (
        OrganisationGuest.objects.select_for_update()
        .filter(organisation_id=organisation_id, organisation__is_active=True, user=user)
        .first()
    )
    if guest is None:
        raise NotFound(
            _("No invitation of this organisation is waiting for you."), code="invitation_not_found"
        )
    return guest


def guest_accept(*, user: User, organisation_id: uuid.UUID) -> OrganisationGuest:
    """The account holder lets the organisation book rides for them as its guest: from now on it may (the
    account becomes a rider). Accepting again changes nothing. NotFound `invitation_not_found`."""
    with transaction.atomic():
        guest = _guest_of(user=user, organisation_id=organisation_id)
        if guest.confirmed_at is None:
            guest.confirmed_at = timezone.now()
            guest.save(update_fields=["confirmed_at"])
        if not user.is_rider:
            User.objects.filter(pk=user.pk).update(is_rider=True)
            user.is_rider = True
    logger.info("organisation %s: guest %s accepted", organisation_id, guest.id)
    return guest


def guest_decline(*, user: User, organisation_id: uuid.UUID) -> None:
    """The account holder says no: the waiting guest row goes, and nothing is booked. NotFound
    `invitation_not_found` (also once accepted: nothing waits)."""
    with transaction.atomic():
        guest = _guest_of(user=user, organisation_id=organisation_id)
        if guest.confirmed_at is not None:
            raise NotFound(
                _("No invitation of this organisation is waiting for you."), code="invitation_not_found"
            )
        guest.delete()
    logger.info("organisation %s: a guest invitation was declined", organisation_id)


# --- API keys (its admins) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key's row and the key itself, which is never stored and never shown again."""

    key: OrganisationApiKey
    plaintext: str


def _scopes(scopes: Collection[str]) -> list[str]:
    if isinstance(scopes, str) or not scopes:
        raise _invalid("scopes", f"A non-empty list of: {', '.join(ApiKeyScope.values)}.")
    unknown = sorted(set(scopes) - set(ApiKeyScope.values))
    if unknown:
        raise _invalid("scopes", f"Unknown scopes: {', '.join(unknown)}.")
    return sorted(set(scopes))


def api_key_create(
    *, organisation_id: uuid.UUID, by: User, name: str, scopes: Collection[str]
) -> IssuedApiKey:
    """An admin makes an API key for the organisation's own system. The answer carries the key once."""
    clean_name = name.strip() if isinstance(name, str) else ""
    if not clean_name or len(clean_name) > KEY_NAME_MAX_LENGTH:
        raise _invalid("name", f"1 to {KEY_NAME_MAX_LENGTH} characters.")
    granted = _scopes(scopes)
    with transaction.atomic():
        organisation = organisation_for_admin(organisation_id=organisation_id, user=by)
        material = api_key_generate()
        key = OrganisationApiKey.objects.create(
            organisation=organisation,
            name=clean_name,
            prefix=material.prefix,
            key_hash=material.key_hash,
            scopes=granted,
            created_by=by,
        )
    logger.info("organisation %s: API key %s made by %s (%s)", organisation.id, key.prefix, by.pk, granted)
    return IssuedApiKey(key=key, plaintext=material.plaintext)


def api_key_revoke(*, organisation_id: uuid.UUID, by: User, key_id: uuid.UUID) -> OrganisationApiKey:
    """An admin revokes a key: every request with it is refused from now on (401). Revoking twice is
    harmless (the first time stands). Raises NotFound `api_key_not_found`."""
    with transaction.atomic():
        organisation = organisation_for_admin(organisation_id=organisation_id, user=by)
        key = (
            OrganisationApiKey.objects.select_for_update()
            .filter(id=key_id, organisation=organisation)
            .first()
        )
        if key is None:
            raise NotFound(_("No such API key."), code="api_key_not_found")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            logger.info("organisation %s: API key %s revoked by %s", organisation.id, key.prefix, by.pk)
    return key
