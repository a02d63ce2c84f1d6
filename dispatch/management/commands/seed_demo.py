"""`manage.py seed_demo`: everything the demo city needs, idempotently (run it as often as you like).

- the service area, from the generated city (`City.generate().service_area_polygon()`);
- a staff user, whose phone and password it prints (the password is made once and kept in
  var/demo-credentials.json, readable only by you; delete the file to get a new one);
- a check that a fare policy is in force (the first one is seeded by a migration);
- a few approved drivers with vehicles (some wheelchair accessible) and a few riders, sharing the printed
  demo password, for trying the API by hand (the simulator registers its own users through the API);
- the founding board: three of the drivers join as members and take founding seats, where the governance
  app offers that.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import DriverProfile, DriverStatus, User, Vehicle
from backend.fares.selectors import policy_version_in_force
from dispatch.models import ServiceArea
from dispatch.simulation.city import City
from governance import selectors, services

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
        password = self.demo_password(Path(options["credentials_file"]))
        with transaction.atomic():
            area = self.seed_service_area(options["area_name"])
            policy_version = self.confirm_fare_policy()
            staff = self.seed_staff(password)
            drivers = [
                self.seed_driver(index, row, password, staff) for index, row in enumerate(DEMO_DRIVERS)
            ]
            riders = [self.seed_rider(phone, name, password) for phone, name in DEMO_RIDERS]
        board = self.seed_board(drivers[:FOUNDING_DIRECTORS], staff)
        write = self.stdout.write
        write(f"service area: {area.name} ({len(area.area.coords[0][0]) - 1}-sided polygon)")
        write(f"fare policy in force: version {policy_version}")
        write(
            f"demo drivers: {len(drivers)} ({sum(1 for row in DEMO_DRIVERS if row[4])} wheelchair accessible)"
        )
        write(f"demo riders: {len(riders)}")
        write(f"founding board: {board}")
        write(self.style.SUCCESS(f"staff sign-in: phone {STAFF_PHONE}  password {password}"))
        write(f"(demo drivers {DEMO_DRIVERS[0][0]}..{DEMO_DRIVERS[-1][0]} and riders share that password)")

    # -- pieces -------------------------------------------------------------------------------------------

    def demo_password(self, path: Path) -> str:
        if path.exists():
            try:
                stored = json.loads(path.read_text()).get("password")
            except ValueError:
                stored = None
            if isinstance(stored, str) and len(stored) >= 12:
                return stored
        password = "demo-" + secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"staff_phone": STAFF_PHONE, "password": password}) + "\n")
        path.chmod(0o600)
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

    def seed_rider(self, phone: str, name: str, password: str) -> User:
        user = User.objects.filter(phone=phone).first()
        if user is None:
            return User.objects.create_user(phone, password=password, name=name, is_rider=True)
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
