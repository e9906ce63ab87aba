"""Errors the warehouse raises; the CLI prints their message on one line and exits with `exit_code`."""

from __future__ import annotations


class WarehouseError(Exception):
    """Base class: the message is one line that names what went wrong."""

    exit_code = 2


class ReadOnlySQLError(WarehouseError):
    """A user query tried to change something (INSERT, COPY, ATTACH, ...)."""


class WarehouseLockedError(WarehouseError):
    """Another process kept the database file locked for longer than the lock timeout."""

    exit_code = 3
