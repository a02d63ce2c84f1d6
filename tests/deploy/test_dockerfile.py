"""infra/deploy/Dockerfile passes hadolint, and the repository's .dockerignore keeps out what must never
be in the image (.venv/, var/, .git/, secrets) without excluding anything the Dockerfile COPYs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.live_server import REPO

DOCKERFILE = REPO / "infra" / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_finds_nothing():
    linted = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=30
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def copy_sources() -> list[str]:
    sources: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            *from_context, _destination = line.split()[1:]
            sources += [source for source in from_context if not source.startswith("--")]
    return sources


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's matching: Go's filepath.Match per segment (`*` and `?` never cross `/`), plus `**` for any
    number of directories, zero included."""
    pattern = pattern.strip("/")
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out, index = out + pattern[index : end + 1], end + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def excluded(path: str) -> bool:
    """Whether the build context leaves `path` out: the last matching rule wins, and a rule matching a
    directory covers everything under it."""
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: depth + 1]) for depth in range(len(parts))]
    verdict = False
    for rule in rules:
        negated = rule.startswith("!")
        regex = _pattern_regex(rule.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def test_the_matcher_reads_patterns_as_docker_does():
    assert _pattern_regex("**/__pycache__/").fullmatch("backend/fares/__pycache__")
    assert _pattern_regex("**/.env").fullmatch(".env")
    assert not _pattern_regex("*.pem").fullmatch("certs/key.pem")  # `*` stops at a directory


def test_nothing_the_dockerfile_copies_is_excluded():
    tracked = subprocess.run(
        ["git", "ls-files", *copy_sources()], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    needed = [path for path in tracked if not path.endswith((".pyc", ".mo"))]
    assert len(needed) > 100, needed  # the apps' code, templates, static files and catalogues
    assert [path for path in needed if excluded(path)] == []
    for source in copy_sources():
        assert (REPO / source).exists(), source
        assert not excluded(source), source


def test_what_must_stay_out_of_the_image_is_excluded():
    for path in (
        ".venv/bin/python",
        "var/media/documents/scan.pdf",
        ".git/HEAD",
        "node_modules/x/index.js",
        "backend/__pycache__/settings.cpython-312.pyc",
        "dispatch/worker.pyc",
        ".env",
        "infra/deploy/.env",
        "vapid_private.pem",
        "tests/conftest.py",
        "docs/img/board.png",
    ):
        assert excluded(path), path
