"""What an uploaded document file really is, from its first bytes (never from its name or the client's
Content-Type, which the sender chooses): PDF, JPEG or PNG, the three kinds a scan or a phone photo of a
licence comes as. Pure: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileType:
    content_type: str
    extension: str


PDF = FileType("application/pdf", "pdf")
JPEG = FileType("image/jpeg", "jpg")
PNG = FileType("image/png", "png")
ACCEPTED = (PDF, JPEG, PNG)
SNIFF_BYTES = 8

_SIGNATURES: tuple[tuple[bytes, FileType], ...] = (
    (b"%PDF-", PDF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
)


def sniff_file_type(head: bytes) -> FileType | None:
    """The accepted type whose signature `head` (the file's first `SNIFF_BYTES` bytes or more) starts
    with, or None for anything else (an executable renamed `.pdf`, an HTML page, an empty file)."""
    return next((file_type for signature, file_type in _SIGNATURES if head.startswith(signature)), None)
