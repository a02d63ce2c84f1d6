"""A small reader for gettext .po catalogues (what makemessages writes), for the catalogue tests.

It reads entries as gettext does: comments and flags, an optional msgctxt, msgid, msgid_plural, msgstr or
msgstr[n], each string possibly continued on following lines. Obsolete entries (`#~`) are skipped: gettext
ignores them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+"(.*)"\s*$')
_CONTINUATION = re.compile(r'^"(.*)"\s*$')
# A Python %-format directive: %(name)s, %s, %d, %.2f ... (%% is a literal percent sign, not a directive).
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[-+ 0#]*\d*(?:\.\d+)?[sdifgeExXorac%]")


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    line: int = 0

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(text.strip() for text in self.msgstr.values())

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    def where(self) -> str:
        return f"line {self.line} ({', '.join(self.references) or 'no reference'}): {self.msgid!r}"


def placeholders(text: str) -> list[str]:
    """The format directives of `text`, as they appear (`%(name)s`, `%s`), without `%%`."""
    return [m.group(0) for m in PLACEHOLDER.finditer(text) if m.group(0) != "%%"]


def read_po(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    current = Entry()
    target: tuple[str, int | None] | None = None
    started = False

    def finish() -> None:
        nonlocal current, started, target
        if started:
            entries.append(current)
        current, started, target = Entry(), False, None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#"):
            if started and target is not None and target[0] != "comment":
                finish()
            if line.startswith("#,"):
                current.flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#:"):
                current.references.extend(line[2:].split())
            target = ("comment", None)
            continue
        keyword = _KEYWORD.match(line)
        if keyword:
            name, index, text = keyword.group(1), keyword.group(2), unescape(keyword.group(3))
            if name in ("msgid", "msgctxt") and started and target is not None and target[0] == "msgstr":
                finish()
            if not started:
                current.line = number
            started = True
            if name.startswith("msgstr"):
                slot = int(index) if index is not None else 0
                current.msgstr[slot] = text
                target = ("msgstr", slot)
            else:
                setattr(current, name, text)
                target = (name, None)
            continue
        continuation = _CONTINUATION.match(line)
        if continuation and target is not None:
            text = unescape(continuation.group(1))
            kind, slot = target
            if kind == "msgstr":
                current.msgstr[slot or 0] += text
            elif kind != "comment":
                setattr(current, kind, (getattr(current, kind) or "") + text)
            continue
        raise ValueError(f"{path}:{number}: cannot read {raw!r}")
    finish()
    return entries
