"""The import contracts of pyproject.toml: the code keeps them, and a back-arrow breaks them.

`infra/bin/test.sh` runs `lint-imports` before pytest; these tests run it too (so a bare `pytest` checks the
layers) and show each contract bites: a copy of the apps with one bad import added fails with that
contract named, a function-level import included (they do not hide a back-arrow from the linter).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("backend", "dispatch", "governance", "mobile_api")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Imports of our apps inside a function, and why each must stay there (none dodges a circle).
FUNCTION_LEVEL_IMPORTS_ALLOWED = {
    # The ASGI app is imported in each uvicorn worker, after main() has set the environment Django reads.
    ("backend/serve.py", "served_application", "backend.asgi"),
    # AppConfig.ready(): OpenAPI extensions register once the app registry is loaded (Django's rule).
    ("mobile_api/apps.py", "ready", "mobile_api"),
    # AppConfig.ready(): the card provider joins the fares app's registry once the models are loaded.
    ("backend/cards/apps.py", "ready", "backend.cards.provider"),
    ("backend/cards/apps.py", "ready", "backend.fares.payments"),
    # AppConfig.ready(): the SMS adapters join the notification channels' registry (Django's rule too).
    ("backend/notifications/apps.py", "ready", "backend.notifications"),
    # AppConfig.ready(): the dispatch streams' collector joins /metrics once the apps are loaded.
    ("dispatch/apps.py", "ready", "backend.metrics"),
    ("dispatch/apps.py", "ready", "dispatch.metrics"),
    # Celery's worker signals: backend.celery is imported by every process (backend/__init__.py), before
    # Django is set up, so the metrics module is loaded only in a worker that uses it.
    ("backend/celery.py", "serve_worker_metrics", "backend"),
    ("backend/celery.py", "forget_worker_child", "backend"),
}


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_every_contract():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _function_level_imports() -> set[tuple[str, str, str]]:
    """(file, function, module) for every import of one of our apps made inside a function."""
    found = set()
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for function in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.Import):
                        modules = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        modules = [node.module]
                    else:
                        continue
                    for module in modules:
                        if module.split(".")[0] in APPS:
                            found.add((str(path.relative_to(ROOT)), function.name, module))
    return found


def test_no_function_level_import_hides_a_circle():
    """An import inside a function is how a circle used to hide; the few left have reasons of their own."""
    assert _function_level_imports() == FUNCTION_LEVEL_IMPORTS_ALLOWED


@pytest.fixture(scope="module")
def apps_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The apps' Python files and pyproject.toml, copied once; each test adds its line to its own copy."""
    copy = tmp_path_factory.mktemp("apps")
    for app in APPS:
        shutil.copytree(
            ROOT / app,
            copy / app,
            ignore=lambda folder, names: [
                name for name in names if not name.endswith(".py") and not (Path(folder) / name).is_dir()
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(
    ("module", "added", "contract"),
    [
        # The kernel reaching up into the trips, the way settlement once reached into governance.
        ("backend/fares/ledger.py", "import dispatch.models\n", "Apps import only downward"),
        # ... even from inside a function.
        (
            "backend/fares/ledger.py",
            "def _later() -> None:\n    from governance import services\n",
            "Apps import only downward",
        ),
        # Governance reading trips instead of the ledger.
        (
            "governance/selectors.py",
            "from dispatch.models import Trip\n",
            "Apps import only downward",
        ),
        # Two dispatch services importing each other.
        (
            "dispatch/services/transitions.py",
            "from dispatch.services import trips\n",
            "No circles",
        ),
        # A service importing a transport.
        (
            "dispatch/money/settlement.py",
            "import dispatch.consumers\n",
            "never import a transport",
        ),
        # A pure rule touching Django or the ledger.
        ("backend/fares/pricing.py", "import django.db\n", "Pure rules import no framework"),
        ("governance/tally.py", "import redis\n", "Pure rules import no framework"),
        ("backend/fares/pricing.py", "from backend.fares import ledger\n", "only each other"),
        ("dispatch/matching/ranking.py", "from dispatch import live\n", "only each other"),
    ],
)
def test_a_bad_import_breaks_its_contract(
    apps_copy: Path, tmp_path: Path, module: str, added: str, contract: str
):
    copy = tmp_path / "apps"
    shutil.copytree(apps_copy, copy)
    with (copy / module).open("a") as source:
        source.write("\n\n" + added)
    result = _lint_imports(copy)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken.replace("\n", " "), result.stdout
