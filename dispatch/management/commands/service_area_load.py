"""`manage.py service_area_load FILE.geojson [--name NAME] [--replace] [--inactive]` (docs/roads.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.services.service_areas import LoadOutcome, ServiceAreaError, service_area_load


class Command(BaseCommand):
    help = (
        "Load a service area from a GeoJSON file: a Polygon or MultiPolygon, as a geometry, a Feature or a "
        "FeatureCollection (merged into one area), in WGS 84 longitude/latitude."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="the GeoJSON file")
        parser.add_argument(
            "--name", default=None, help="the area's name (default: the file's \"name\" property)"
        )
        parser.add_argument(
            "--replace", action="store_true", help="overwrite the shape of an existing area of that name"
        )
        parser.add_argument(
            "--inactive", action="store_true", help="save it switched off (no quotes or trips inside it)"
        )

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        name = options["name"]
        try:
            loaded = service_area_load(
                path,
                name=str(name) if name is not None else None,
                replace=bool(options["replace"]),
                active=not options["inactive"],
            )
        except ServiceAreaError as error:
            raise CommandError(str(error)) from error
        area = loaded.area
        west, south, east, north = area.area.extent
        what = {
            LoadOutcome.CREATED: "created",
            LoadOutcome.REPLACED: "replaced",
            LoadOutcome.UNCHANGED: "unchanged (the same shape is loaded already)",
        }[loaded.outcome]
        self.stdout.write(
            f"service area {area.name!r}: {what}\n"
            f"  shape   {loaded.polygons_read} polygon(s) read, {area.area.num_geom} after merging, "
            f"{loaded.area_km2:.2f} km²\n"
            f"  bbox    south {south:.6f}, west {west:.6f}, north {north:.6f}, east {east:.6f}\n"
            f"  status  {'active' if area.is_active else 'inactive'}"
        )
