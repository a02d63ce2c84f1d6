"""`manage.py seed_demo`: everything the demo city needs, idempotently (run it as often as you like).

- the service area, from the generated city (`City.generate().service_area_polygon()`);
- a staff user, whose phone and password it prints (the password is made once and kept in
  var/demo-credentials.json, readable only by you; delete the file to get a new one);
- a check that a fare policy is in force (the first one is seeded by a migration);
- a few approved drivers with vehicles (some wheelchair accessible) and a few riders, sharing the printed
  demo password, for trying the API by hand (the simulator registers its own users through the API);
- the founding board: three of the drivers join as members and take founding seats, where the governance
  app offers that;
- the members' portal's business (docs/portal.md): every demo driver is a member, a bylaw proposal is open
  for votes with a first comment in its discussion, and an election for one seat takes nominations, with
  two founders standing (each made once: kept while one with the demo's title is open);
- rides booked ahead the demo can show: the board's shortest lead (`reservations.min_lead_s`, 3600 s by
  default) is the server's real time while the simulation runs at speedup 20, so where the policy in force
  asks for more than DEMO_MIN_LEAD_S (600 s, the least the board's bounds allow) a demo fare-policy
  version is put in force that differs only there (the founding board's route, `policy_version_create`;
  not once the board governs fares through proposals). Demo only: docs/simulation.md;
- an organisation, the Harlem Dialysis Center (a clinic; any hour of any day, so the demo can book
  whenever it runs; a reference on every booking), with an admin and a coordinator sharing the demo
  password, and an API key for its scheduling system (`trips:read`, `trips:write`), which the simulator
  books its guests' rides with. The key is shown once: it is kept in the credentials file, and made again
  (the old one revoked) only when the file's no longer works. Its prefix is printed, never the key.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import DriverProfile, DriverStatus, User, Vehicle
from backend.fares.models import FarePolicyVersion, PolicySource
from backend.fares.selectors import policy_document, policy_of, policy_version_in_force
from backend.fares.services import policy_version_create
from backend.organisations import services as organisations
from backend.organisations.keys import api_key_matches, api_key_prefix
from backend.organisations.models import (
    ApiKeyScope,
    Organisation,
    OrganisationApiKey,
    OrganisationKind,
    OrganisationMembership,
    OrganisationRole,
)
from dispatch.models import ServiceArea
from dispatch.simulation.city import City
from governance import selectors, services
from governance.models import Election, Member, MemberStatus, Proposal, ProposalKind, ProposalStatus

STAFF_PHONE = "+12125550001"
DEMO_DRIVERS = [
    # phone, name, make, model, wheelchair accessible
    ("+12125550101", "Ada Okafor", "Toyota", "Sienna", True),
    ("+12125550102", "Bram Kowalski", "Toyota", "Prius", False),
    ("+12125550103", "Carmen Reyes", "Honda", "Odyssey", True),
    ("+12125550104", "Dev Patel", "Hyundai", "Ioniq", False),
    ("+12125550105", "Eun-ji Park", "Kia", "Niro", False),
    ("+12125550106", "Farid Haddad", "Ford", "Transit", True),
]
DEMO_RIDERS = [
    ("+12125550201", "Grace Liu"),
    ("+12125550202", "Hector Alvarez"),
    ("+12125550203", "Ines Moreau"),
    ("+12125550204", "Jamal Wright"),
]
FOUNDING_DIRECTORS = 3
# The board's bounds (backend/fares/policy.py RESERVATION_RULE_BOUNDS) allow no shorter lead.
DEMO_MIN_LEAD_S = 600
# The portal's demo business (seed_member_business), found again by these titles on the next run.
DEMO_BYLAW_TITLE = "Bylaw: publish the fairness figures every month"
DEMO_BYLAW_BODY = (
    "Section 9 gains: the co-op publishes its fairness figures (trips, pay over the floor, the Gini of"
    " hourly earnings, offer shares, wheelchair response times) on the first of every month."
)
DEMO_BYLAW_COMMENT = "Yes, and let the simulator show the Gini before the board changes the dispatch rule."
DEMO_ELECTION_TITLE = "Board seat: night-shift drivers"
ORGANISATION_NAME = "Harlem Dialysis Center"
ORGANISATION_POLICY: dict[str, Any] = {
    "kind": OrganisationKind.CLINIC.value,
    # Round the clock every day (a slot from 00:00 to 00:00 runs to the next midnight), so that the demo
    # books whenever it runs; a clinic would set its opening hours.
    "allowed_hours": [{"weekdays": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "00:00"}],
    "reference_required": True,
    "wav_allowed": True,
    "billing_email": "billing@harlem-dialysis.example",
    "payment_terms_days": 30,
}
ORGANISATION_PEOPLE = [
    # phone, name, role
    ("+12125550301", "Naomi Brooks", OrganisationRole.ADMIN),
    ("+12125550302", "Luis Ferreira", OrganisationRole.COORDINATOR),
]
API_KEY_NAME = "Scheduling system (demo)"


class Command(BaseCommand):
    help = "Seed the demo city: service area, staff user, demo drivers and riders, founding board."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--area-name", default="Demo City")
        parser.add_argument(
            "--credentials-file",
            default=str(Path(settings.BASE_DIR) / "var" / "demo-credentials.json"),
            help="where the demo password is kept between runs",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = Path(options["credentials_file"])
        password = self.demo_password(credentials)
        with transaction.atomic():
            area = self.seed_service_area(options["area_name"])
            self.confirm_fare_policy()
            staff = self.seed_staff(password)
            drivers = [
                self.seed_driver(index, row, password, staff) for index, row in enumerate(DEMO_DRIVERS)
            ]
            riders = [self.seed_rider(phone, name, password) for phone, name in DEMO_RIDERS]
        board = self.seed_board(drivers[:FOUNDING_DIRECTORS], staff)
        portal = self.seed_member_business(drivers, staff)
        booking_ahead = self.seed_booking_ahead()
        policy_version = self.confirm_fare_policy()
        organisation = self.seed_organisation(staff, password, credentials)
        write = self.stdout.write
        write(f"service area: {area.name} ({len(area.area.coords[0][0]) - 1}-sided polygon)")
        write(f"fare policy in force: version {policy_version}")
        write(f"rides booked ahead: {booking_ahead}")
        write(f"organisation: {organisation}")
        write(
            f"demo drivers: {len(drivers)} ({sum(1 for row in DEMO_DRIVERS if row[4])} wheelchair accessible)"
        )
        write(f"demo riders: {len(riders)}")
        write(f"founding board: {board}")
        write(f"members' portal (/members/): {portal}")
        write(self.style.SUCCESS(f"staff sign-in: phone {STAFF_PHONE}  password {password}"))
        write(f"(demo drivers {DEMO_DRIVERS[0][0]}..{DEMO_DRIVERS[-1][0]} and riders share that password)")

    # -- pieces -------------------------------------------------------------------------------------------

    def demo_password(self, path: Path) -> str:
        stored = read_credentials(path).get("password")
        if isinstance(stored, str) and len(stored) >= 12:
            return stored
        password = "demo-" + secrets.token_urlsafe(12)
        write_credentials(path, {"staff_phone": STAFF_PHONE, "password": password})
        return password

    def seed_service_area(self, name: str) -> ServiceArea:
        ring = City.generate().service_area_polygon()
        area = MultiPolygon(Polygon(ring, srid=4326), srid=4326)
        service_area, _ = ServiceArea.objects.update_or_create(
            name=name, defaults={"area": area, "is_active": True}
        )
        return service_area

    def confirm_fare_policy(self) -> int:
        try:
            return int(policy_version_in_force().version)
        except Exception as error:  # the selector raises its own "none in force" error
            raise CommandError(
                "No fare policy is in force: run `manage.py migrate` (it seeds version 1)."
            ) from error

    def seed_staff(self, password: str) -> User:
        staff = User.objects.filter(phone=STAFF_PHONE).first()
        if staff is None:
            return User.objects.create_superuser(STAFF_PHONE, password=password, name="Demo Dispatcher")
        if not staff.check_password(password) or not staff.is_staff:
            staff.set_password(password)
            staff.is_staff = staff.is_superuser = True
            staff.save(update_fields=["password", "is_staff", "is_superuser"])
        return staff

    def seed_driver(
        self, index: int, row: tuple[str, str, str, str, bool], password: str, staff: User
    ) -> User:
        phone, name, make, model, wav = row
        user = User.objects.filter(phone=phone).first()
        if user is None:
            user = User.objects.create_user(phone, password=password, name=name, is_driver=True)
        elif not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        profile, _ = DriverProfile.objects.get_or_create(
            user=user, defaults={"license_number": f"DEMO{index + 1:06d}"}
        )
        if profile.status != DriverStatus.APPROVED:
            profile.status = DriverStatus.APPROVED
            profile.approved_at = timezone.now()
            profile.approved_by = staff
            profile.save(update_fields=["status", "approved_at", "approved_by"])
        if not Vehicle.objects.filter(driver=profile, is_active=True).exists():
            Vehicle.objects.create(
                driver=profile,
                plate=f"DEMO{index + 1:03d}",
                make=make,
                model=model,
                year=2023,
                seats=6 if wav else 4,
                wheelchair_accessible=wav,
            )
        return user

    def seed_rider(self, phone: str, name: str, password: str, *, rider: bool = True) -> User:
        """A person sharing the demo password: a rider, or (rider=False) someone with an account only."""
        user = User.objects.filter(phone=phone).first()
        if user is None:
            return User.objects.create_user(phone, password=password, name=name, is_rider=rider)
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def seed_board(self, founders: list[User], staff: User) -> str:
        seated = 0
        for user in founders:
            member = selectors.current_member(user)
            if member is None:
                member = services.membership_join(user=user)
            if not selectors.seats_in_force().filter(member=member).exists():
                services.board_seat_found(member_id=member.id, actor=staff)
            seated += 1
        return f"{seated} founding directors seated ({selectors.seats_in_force().count()} seats in force)"

    def seed_member_business(self, drivers: list[User], staff: User) -> str:
        """Every demo driver a member; an open bylaw proposal with a comment, and an election taking
        nominations with two founders standing, so the portal has something to read, discuss and vote on."""
        for user in drivers:
            if selectors.current_member(user) is None:
                services.membership_join(user=user)
        now = timezone.now()
        proposer = drivers[0]
        proposal = Proposal.objects.filter(title=DEMO_BYLAW_TITLE, status=ProposalStatus.OPEN).first()
        if proposal is None:
            proposal = services.proposal_create(
                user=proposer,
                kind=ProposalKind.BYLAW,
                title=DEMO_BYLAW_TITLE,
                body=DEMO_BYLAW_BODY,
                payload={},
                closes_at=now + timedelta(days=14),
            )
            services.proposal_comment_add(proposal_id=proposal.id, user=drivers[1], body=DEMO_BYLAW_COMMENT)
        election = Election.objects.filter(title=DEMO_ELECTION_TITLE, closed_at__isnull=True).first()
        if election is None:
            election = services.election_create(
                user=staff,
                title=DEMO_ELECTION_TITLE,
                seats=1,
                nominations_close_at=now + timedelta(days=7),
                voting_closes_at=now + timedelta(days=14),
            )
            for user in drivers[1:3]:
                services.election_nominate(
                    election_id=election.id, user=user, statement="I drive nights and want them heard."
                )
        members = Member.objects.filter(status=MemberStatus.ACTIVE).count()
        return f"{members} members; proposal {proposal.title!r} open; election {election.title!r} nominating"

    def seed_booking_ahead(self) -> str:
        """The board's shortest lead for rides booked ahead, made DEMO_MIN_LEAD_S by a demo version of the
        policy in force where it is longer (see the module docstring)."""
        version = policy_version_in_force()
        lead = policy_of(version).reservations.min_lead_s
        if lead <= DEMO_MIN_LEAD_S:
            return f"at least {lead // 60} min ahead (fare policy version {version.version})"
        if FarePolicyVersion.objects.filter(source=PolicySource.GOVERNANCE).exists():
            return (
                f"at least {lead // 60} min ahead: the board governs fares, so the demo keeps its policy"
                " (the simulated reservations are dispatched that much later)"
            )
        document = policy_document(version)
        document.pop("version")
        document.pop("effective_at")
        document["reservations"] = {**document.get("reservations", {}), "min_lead_s": DEMO_MIN_LEAD_S}
        demo = policy_version_create(document=document, effective_at=None, source=PolicySource.FOUNDING)
        return (
            f"at least {DEMO_MIN_LEAD_S // 60} min ahead (demo fare policy version {demo.version}: version"
            f" {version.version} with reservations.min_lead_s {DEMO_MIN_LEAD_S}, not {lead})"
        )

    def seed_organisation(self, staff: User, password: str, credentials: Path) -> str:
        """The demo organisation, its people and its system's API key, through the organisations'
        services (staff set it up, its admin makes the key)."""
        organisation = Organisation.objects.filter(name=ORGANISATION_NAME).first()
        if organisation is None:
            organisation = organisations.organisation_create(
                by=staff, name=ORGANISATION_NAME, changes=ORGANISATION_POLICY
            )
        else:
            changed = {
                field: value
                for field, value in {**ORGANISATION_POLICY, "is_active": True}.items()
                if getattr(organisation, field) != value
            }
            if changed:
                organisation = organisations.organisation_update(
                    organisation_id=organisation.id, by=staff, changes=changed
                )
        people = {}
        for phone, name, role in ORGANISATION_PEOPLE:
            person = self.seed_rider(phone, name, password, rider=False)
            membership = OrganisationMembership.objects.filter(organisation=organisation, user=person).first()
            if membership is None or not membership.is_active or membership.role != role:
                organisations.member_add(organisation_id=organisation.id, by=staff, phone=phone, role=role)
            people[role] = person
        prefix = self.seed_api_key(organisation, people[OrganisationRole.ADMIN], credentials)
        coordinator = ORGANISATION_PEOPLE[1][0]
        return (
            f"{organisation.name} (clinic, reference required), admin {ORGANISATION_PEOPLE[0][0]} and"
            f" coordinator {coordinator} share the demo password; its system's API key rk_{prefix}_... is"
            f" kept in {credentials}"
        )

    def seed_api_key(self, organisation: Organisation, admin: User, credentials: Path) -> str:
        """The key in the credentials file when it still opens the organisation; else a new one (the demo's
        older keys revoked). Answers the key's prefix."""
        stored = read_credentials(credentials)
        kept = stored.get("organisation") or {}
        plaintext = str(kept.get("api_key") or "") if isinstance(kept, dict) else ""
        prefix = api_key_prefix(plaintext)
        key = (
            OrganisationApiKey.objects.filter(
                organisation=organisation, prefix=prefix, revoked_at__isnull=True
            ).first()
            if prefix
            else None
        )
        if key is None or not api_key_matches(plaintext, key.key_hash):
            for old in OrganisationApiKey.objects.filter(
                organisation=organisation, name=API_KEY_NAME, revoked_at__isnull=True
            ):
                organisations.api_key_revoke(organisation_id=organisation.id, by=admin, key_id=old.id)
            issued = organisations.api_key_create(
                organisation_id=organisation.id,
                by=admin,
                name=API_KEY_NAME,
                scopes=[ApiKeyScope.TRIPS_READ.value, ApiKeyScope.TRIPS_WRITE.value],
            )
            key, plaintext = issued.key, issued.plaintext
        write_credentials(
            credentials,
            {
                **stored,
                "organisation": {
                    "id": str(organisation.id),
                    "name": organisation.name,
                    "admin_phone": ORGANISATION_PEOPLE[0][0],
                    "coordinator_phone": ORGANISATION_PEOPLE[1][0],
                    "api_key": plaintext,
                },
            },
        )
        return key.prefix


def read_credentials(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write the credentials file readable by its owner only, from the first byte (mode 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)  # a file made before, with another mode
