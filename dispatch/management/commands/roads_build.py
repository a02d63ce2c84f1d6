"""`manage.py roads_build --pbf PATH [--name NAME] [--force]`: a city's road tiles (docs/roads.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.roads.build import RoadBuildError, roads_build
from dispatch.roads.choice import city_tiles


class Command(BaseCommand):
    help = "Build Valhalla road tiles for a city from an OpenStreetMap .osm.pbf extract (idempotent)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--pbf", required=True, type=Path, help="the city's OpenStreetMap extract (.osm.pbf)"
        )
        parser.add_argument(
            "--name", default=None, help="the tile set's name (ROCHDALE_ROADS_CITY by default)"
        )
        parser.add_argument("--force", action="store_true", help="rebuild even when the tiles are up to date")
        parser.add_argument("--json", action="store_true", help="print the manifest as JSON")

    def handle(self, *args: object, **options: object) -> None:
        pbf = options["pbf"]
        assert isinstance(pbf, Path)
        name = options["name"]
        tiles = city_tiles(str(name) if name else None)
        try:
            report = roads_build(pbf, tiles, force=bool(options["force"]))
        except RoadBuildError as error:
            raise CommandError(str(error)) from error
        manifest = report.manifest
        if options["json"]:
            self.stdout.write(json.dumps({**manifest, "built": report.built}))
            return
        west, south, east, north = manifest["bbox"]
        verb = "built" if report.built else "up to date (same extract, same engine; --force rebuilds)"
        self.stdout.write(
            f"roads {manifest['name']}: {verb}\n"
            f"  source  {manifest['source']} (sha256 {manifest['source_sha256'][:12]})\n"
            f"  roads   {manifest['nodes']:,} nodes, {manifest['edges']:,} edges, {manifest['ways']:,} ways"
            f" ({manifest['one_way_ways']:,} one-way)\n"
            f"  bbox    south {south}, west {west}, north {north}, east {east}\n"
            f"  tiles   {manifest['tiles']} in {tiles.tile_dir}\n"
            f"  seconds {manifest['seconds']} (Valhalla {manifest['engine_version']})"
        )
