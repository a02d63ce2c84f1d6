"""Seed fare policy version 1: the default documented in backend/fares/policy.py and docs/fares.md.

The document is copied here, not imported, so that later edits of the default never rewrite history.
"""

from datetime import UTC, datetime

from django.db import migrations

DEFAULT_POLICY_V1 = {
    "currency": "USD",
    "distance_unit": "mile",
    "rider": {
        "base": "2.50",
        "per_distance": "1.76",
        "per_minute": "0.76",
        "booking_fee": "0.00",
        "minimum_fare": "10.00",
        "surge_cap": "1.00",
        "cancellation_fee": "5.00",
        "free_cancellation_s": 120,
    },
    "commission_rate": "0.15",
    "driver_minimum": {
        "per_distance": "1.496",
        "per_minute": "0.6413",
        "per_trip": "0.00",
        "wav_per_distance": "1.936",
        "period": "trip",
    },
}


def seed_default_policy(apps, schema_editor):
    FarePolicyVersion = apps.get_model("fares", "FarePolicyVersion")
    if not FarePolicyVersion.objects.exists():
        FarePolicyVersion.objects.create(
            version=1,
            effective_at=datetime(2020, 1, 1, tzinfo=UTC),
            document=DEFAULT_POLICY_V1,
            source="seed",
        )


class Migration(migrations.Migration):
    dependencies = [("fares", "0001_initial")]

    operations = [migrations.RunPython(seed_default_policy, migrations.RunPython.noop)]
