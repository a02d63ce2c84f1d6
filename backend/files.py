"""Writing operator files whole or not at all: backups, their checksums, signed audit heads, signing keys.

A reader (a restore, a publishing job, a second process) must never see half a file, so each is written to
a temporary file of its own in the same directory (mkstemp: a unique name, so two writers never share one)
and then renamed or linked into place, which is atomic on one file system.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["create_once", "write_atomically"]


def _scratch_file(path: Path, mode: int) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp makes the file 0600 already; chmod states the mode we mean (0644 for a file to publish).
    os.fchmod(handle, mode)
    return handle, Path(scratch)


def write_atomically(path: Path, fill: Callable[[int], None] | bytes, *, mode: int = 0o600) -> Path:
    """Write ``path`` whole: ``fill`` is the bytes, or a function given the open descriptor to write to
    (a subprocess's stdout, say). The file is flushed to disk before it takes the name, so a crash leaves
    the old file or the new one, never a torn one."""
    handle, scratch = _scratch_file(path, mode)
    try:
        try:
            if isinstance(fill, bytes):
                os.write(handle, fill)
            else:
                fill(handle)
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return path


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Create ``path`` with ``data`` unless it exists; True when this call made it. Two processes creating
    it at once both end up with the one linked first (a hard link never replaces a file)."""
    if path.exists():
        return False
    handle, scratch = _scratch_file(path, mode)
    try:
        try:
            os.write(handle, data)
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.link(scratch, path)
        except FileExistsError:
            return False
    finally:
        scratch.unlink(missing_ok=True)
    return True
