"""Seed dispatch policy version 1: the fairness rule the board starts from (docs/dispatch.md)."""

from django.db import migrations

VERSION_1 = {
    "fairness": {
        "rule": "idle_within_eta_band",
        "eta_window_s": 120,
        "max_pickup_eta_s": 1200,
        "description": (
            "Among the drivers whose pickup ETA is within eta_window_s of the fastest, the trip is offered "
            "first to the one who has waited longest since their last trip (or since going online); the "
            "next offer applies the same rule to the drivers left. No driver further than "
            "max_pickup_eta_s from the pickup is offered the trip."
        ),
    },
    "max_candidates": 20,
}


def seed(apps, schema_editor):
    from django.utils import timezone
    from datetime import UTC, datetime

    DispatchPolicyVersion = apps.get_model("dispatch", "DispatchPolicyVersion")
    DispatchPolicyVersion.objects.get_or_create(
        version=1,
        defaults={
            "effective_at": datetime(2000, 1, 1, tzinfo=UTC),
            "document": VERSION_1,
            "created_at": timezone.now(),
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("dispatch", "DispatchPolicyVersion").objects.filter(version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("dispatch", "0002_initial")]

    operations = [migrations.RunPython(seed, unseed)]
