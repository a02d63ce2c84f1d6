"""factory-boy factories for the models tests need most."""

from __future__ import annotations

import factory
from django.contrib.gis.geos import MultiPolygon, Polygon

from backend.accounts.models import DriverProfile, DriverStatus, User, Vehicle

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    phone = factory.Sequence(lambda n: f"+1212555{n:04d}")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class RiderFactory(UserFactory):
    is_rider = True


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class DriverProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DriverProfile

    license_number = factory.Sequence(lambda n: f"TLC{n:07d}")
    status = DriverStatus.APPROVED


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    plate = factory.Sequence(lambda n: f"T{n:06d}C")
    make = "Toyota"
    model = "Camry"
    year = 2022
    seats = 4
    wheelchair_accessible = False


class DriverFactory(UserFactory):
    is_driver = True

    @factory.post_generation
    def profile(obj, create, extracted, **kwargs):
        if not create:
            return
        status = kwargs.pop("status", DriverStatus.APPROVED)
        wav = kwargs.pop("wheelchair_accessible", False)
        profile = DriverProfileFactory(user=obj, status=status)
        VehicleFactory(driver=profile, wheelchair_accessible=wav)


def square_service_area(
    name: str = "Test City", lat: float = 40.7580, lng: float = -73.9855, half_deg: float = 0.1
):
    """A square service area around a point, saved."""
    from dispatch.models import ServiceArea

    ring = (
        (lng - half_deg, lat - half_deg),
        (lng + half_deg, lat - half_deg),
        (lng + half_deg, lat + half_deg),
        (lng - half_deg, lat + half_deg),
        (lng - half_deg, lat - half_deg),
    )
    return ServiceArea.objects.create(name=name, area=MultiPolygon(Polygon(ring, srid=4326), srid=4326))
