"""`manage.py regulator_zones_load FILE.geojson [--replace]` (docs/compliance.md, "Trip records for the
regulator")."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.compliance.zones import ZoneFileError, regulator_zones_load


class Command(BaseCommand):
    help = (
        "Load the regulator's zones (New York: the TLC taxi zones) from a GeoJSON FeatureCollection in "
        "WGS 84, one Feature per zone with the properties LocationID, borough, zone and optionally "
        "service_zone."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="the GeoJSON file")
        parser.add_argument(
            "--replace", action="store_true", help="make the file the whole zone table (the old zones go)"
        )

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        try:
            loaded = regulator_zones_load(path, replace=bool(options["replace"]))
        except ZoneFileError as error:
            raise CommandError(str(error)) from error
        replaced = f", {loaded.replaced} replaced" if options["replace"] else ""
        self.stdout.write(
            f"regulator zones: {loaded.loaded} loaded from {loaded.features_read} feature(s){replaced}"
        )
