"""Fare policy versions (and, in ledger.py-backed models below, the money records).

A policy version is immutable: the database refuses UPDATE and DELETE. The one in force at an instant is the
version with the latest `effective_at` not after it (the highest version number breaks a tie).
"""

from __future__ import annotations

import pgtrigger
from django.db import models
from django.utils import timezone


class PolicySource(models.TextChoices):
    SEED = "seed", "Seeded default"
    GOVERNANCE = "governance", "Passed board proposal"
    FOUNDING = "founding", "Founding board (management command)"


class FarePolicyVersion(models.Model):
    version = models.PositiveIntegerField(primary_key=True)
    effective_at = models.DateTimeField(db_index=True)
    document = models.JSONField(help_text="The contract's policy object without version and effective_at.")
    source = models.CharField(max_length=16, choices=PolicySource.choices)
    proposal_id = models.UUIDField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        triggers = [
            pgtrigger.Protect(name="fare_policy_versions_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(source__in=PolicySource.values), name="policy_source_valid"),
        ]

    def __str__(self) -> str:
        return f"fare policy v{self.version} from {self.effective_at.isoformat()}"
