"""Errors that mean "the user's input is wrong": the CLI prints them on one line and exits 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input. Message reads `FILE: FIELD: reason` (line number in FILE when known)."""

    def __init__(self, source: str, field: str | None, reason: str, line: int | None = None):
        self.source = str(source)
        self.field = field
        self.reason = reason
        self.line = line
        where = self.source if line is None else f"{self.source}:{line}"
        parts = [where] + ([field] if field else []) + [reason]
        super().__init__(": ".join(parts))
