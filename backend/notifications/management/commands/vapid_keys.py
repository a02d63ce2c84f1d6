"""`manage.py vapid_keys`: make the co-op's VAPID key ahead of the first push (into ROCHDALE_VAPID_KEY_FILE)
and print its public key, the applicationServerKey browsers subscribe with."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from backend.notifications.webpush import vapid_key_file_ensure, vapid_public_key


class Command(BaseCommand):
    help = "Make the VAPID key file if there is none and print the public key browsers subscribe with."

    def handle(self, *args: object, **options: object) -> None:
        if (settings.ROCHDALE_VAPID_PRIVATE_KEY or "").strip():
            self.stdout.write("Using ROCHDALE_VAPID_PRIVATE_KEY.")
        else:
            path, made = vapid_key_file_ensure()
            self.stdout.write(f"{'Generated' if made else 'Kept'} {path} (keep it private, mode 600).")
        self.stdout.write(vapid_public_key())
