"""`manage.py city_export_osm --out PATH [--seed N]`: the demo city as an OpenStreetMap extract.

The city is the one the demo and the simulator use (`SimulationConfig().city()`: the same seed, width and
height as `seed_demo`'s service area and `manage.py simulate`'s streets), so tiles built from this file
(`manage.py roads_build --pbf PATH --name demo`) route the very streets the simulated cars drive.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatch.simulation.osm_export import export_osm
from dispatch.simulation.runner import SimulationConfig


class Command(BaseCommand):
    help = (
        "Export the generated demo city's streets as an OpenStreetMap .osm.pbf (one node per intersection, "
        "one way per road, oneway and maxspeed tagged); unchanged files are left alone."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="the file to write (.osm.pbf or .osm)")
        parser.add_argument(
            "--seed",
            type=int,
            default=SimulationConfig.city_seed,
            help=f"the city's seed (the demo's, {SimulationConfig.city_seed}, by default)",
        )

    def handle(self, *args: object, **options: object) -> None:
        out, seed = options["out"], options["seed"]
        assert isinstance(out, Path) and isinstance(seed, int)
        if not out.name.endswith((".osm.pbf", ".osm")):
            raise CommandError(f"{out} must end in .osm.pbf or .osm (osmium picks the format by suffix)")
        city = SimulationConfig(city_seed=seed).city()
        export = export_osm(city, out)
        verb = "written" if export.written else "unchanged (same city, same bytes)"
        self.stdout.write(
            f"city seed {seed}: {export.path} {verb}\n"
            f"  {export.nodes:,} nodes, {export.ways:,} ways ({export.one_way_ways:,} one-way), "
            f"sha256 {export.sha256[:12]}"
        )
