"""`manage.py city_export_osm` exports the very city the demo seeds and simulates, `roads_build` builds
it (and skips it the second time), and `manage.py simulate --router valhalla` refuses to start without
tiles rather than drive somewhere else."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dispatch.simulation.city import City
from dispatch.simulation.osm_export import export_digest
from dispatch.simulation.runner import SimulationConfig


def run(*args: str, **options: object) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_the_export_is_the_demo_city_and_roads_build_builds_it_once(settings, tmp_path):
    pbf = tmp_path / "roads" / "demo.osm.pbf"

    said = run("city_export_osm", "--out", str(pbf))
    assert "written" in said and "3,006 nodes, 150 ways (130 one-way)" in said
    assert "unchanged" in run("city_export_osm", "--out", str(pbf))
    digest = hashlib.sha256(pbf.read_bytes()).hexdigest()
    # seed_demo's service area comes from City.generate(), the simulator's streets from its config's city:
    # both are this export's city.
    assert digest == export_digest(City.generate()) == export_digest(SimulationConfig().city())

    settings.ROCHDALE_ROADS_DIR = tmp_path / "roads"
    built = run("roads_build", "--pbf", str(pbf), "--name", "demo")
    assert "roads demo: built" in built and "3,006 nodes, 5,875 edges, 150 ways (130 one-way)" in built
    assert "up to date" in run("roads_build", "--pbf", str(pbf), "--name", "demo")
    assert (tmp_path / "roads" / "demo" / "manifest.json").is_file()


def test_another_seed_is_another_city_and_the_suffix_must_name_an_osm_format(tmp_path):
    pbf = tmp_path / "seed8.osm.pbf"
    run("city_export_osm", "--out", str(pbf), "--seed", "8")
    assert hashlib.sha256(pbf.read_bytes()).hexdigest() == export_digest(City.generate(8))

    xml = tmp_path / "demo.osm"
    run("city_export_osm", "--out", str(xml))
    assert xml.read_text().startswith("<?xml") and 'k="oneway" v="yes"' in xml.read_text()

    with pytest.raises(CommandError, match=r"must end in \.osm\.pbf or \.osm"):
        run("city_export_osm", "--out", str(tmp_path / "demo.pbf"))


def test_simulate_with_the_valhalla_router_needs_the_tiles(settings, tmp_path):
    settings.ROCHDALE_ROADS_DIR = tmp_path / "no-roads"
    with pytest.raises(CommandError, match="no road tiles"):
        run("simulate", "--router", "valhalla", "--token-cache", "", "--no-progress")
