"""docs/contract.md is the upstream wire contract word for word, plus marked paragraphs only.

So nothing the project does beyond the contract can hide in the copied text: an addition is a marked
paragraph, and a change of a written part is also listed in docs/api.md.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT_COPY = REPO / "docs" / "contract.md"
API_PAGE = REPO / "docs" / "api.md"
# CI and the developers' machines keep shared/ beside the repository.
UPSTREAM = REPO.parent / "shared" / "CONTRACT.md"
MARKS = ("> **About this copy.**", "> **Extension", "> **Changed")


def without_marked_paragraphs(text: str) -> str:
    """The text with every marked quote (and the blank line before it) taken out."""
    lines = text.split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        starts_mark = lines[index] == "" and index + 1 < len(lines) and lines[index + 1].startswith(MARKS)
        if not starts_mark:
            kept.append(lines[index])
            index += 1
            continue
        index += 1
        while index < len(lines) and lines[index].startswith(">"):
            index += 1
    return "\n".join(kept)


def _recorded_upstream_digest(text: str) -> str:
    match = re.search(r"upstream sha256\s*>?\s*`([0-9a-f]{64})`", text)
    assert match, "docs/contract.md names the sha256 of the upstream text it copies"
    return match.group(1)


def test_the_copy_is_the_upstream_text_plus_marked_paragraphs() -> None:
    copy = CONTRACT_COPY.read_text()
    upstream_text = without_marked_paragraphs(copy)
    assert hashlib.sha256(upstream_text.encode()).hexdigest() == _recorded_upstream_digest(copy)
    if UPSTREAM.exists():  # the upstream itself, where it lies beside the repository
        assert upstream_text == UPSTREAM.read_text(), "shared/CONTRACT.md changed: copy its new text in"


def test_every_mark_is_a_whole_quote_paragraph() -> None:
    lines = CONTRACT_COPY.read_text().split("\n")
    for number, line in enumerate(lines):
        if line.startswith(MARKS):
            assert lines[number - 1] in ("", ">"), f"line {number + 1}: a mark starts its own paragraph"
        if "**Extension" in line or "**Changed" in line:
            assert line.startswith(">"), f"line {number + 1}: marks live in quoted paragraphs"


def test_every_change_is_listed_in_the_api_page() -> None:
    copy = CONTRACT_COPY.read_text()
    api = API_PAGE.read_text()
    assert "docs/contract.md" in api
    bare_pointers = re.findall(r"(?<![/\w])CONTRACT\.md", api)
    assert bare_pointers == [], "point to docs/contract.md, not to a CONTRACT.md a newcomer lacks"
    section = api.split("## Extensions and changes of the wire contract", 1)
    assert len(section) == 2, "docs/api.md has the list of extensions and changes"
    changes_in_copy = copy.count("> **Changed")
    listed = len(re.findall(r"^- \*\*Changed", section[1], flags=re.MULTILINE))
    assert changes_in_copy == listed >= 1
