"""The compiled catalogues these tests read. The test and run scripts compile them (infra/bin/common.sh
`compile_catalogues`); this compiles them again only when a .po is newer than its .mo, so that running
pytest on this directory by hand after editing a catalogue still tests what the catalogue says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"


def stale_catalogues() -> list[Path]:
    stale = []
    for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            stale.append(po)
    return stale


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues() -> None:
    stale = stale_catalogues()
    if not stale:
        return
    for po in stale:
        subprocess.run(["msgfmt", "--check-format", "-o", str(po.with_suffix(".mo")), str(po)], check=True)
    # Django caches the catalogues it has loaded in this process; start again from the new files.
    from django.utils.translation import trans_real

    trans_real._translations = {}
    trans_real._default = None
