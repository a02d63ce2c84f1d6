"""Bounds on what members write, shared by proposals, elections and the board pages."""

from __future__ import annotations

MAX_VOTING_DAYS = 90
MAX_TITLE_LENGTH = 200
MAX_BODY_LENGTH = 20_000
