"""Balances are derived from postings (the running-total table goes: posting only INSERTs, so it never
locks a shared row), and captures count the provider's refusals, part of their idempotency key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fares", "0004_ledger_entry_balanced_at_commit")]

    operations = [
        migrations.DeleteModel(name="AccountBalance"),
        migrations.AddField(
            model_name="paymentcapture",
            name="provider_refusals",
            field=models.PositiveIntegerField(
                default=0,
                help_text=(
                    "Attempts the provider answered with a refusal. Part of the idempotency key: the attempt "
                    "after a refusal is a new charge (a new key); a retry of an attempt with no answer repeats "
                    "the key."
                ),
            ),
        ),
    ]
