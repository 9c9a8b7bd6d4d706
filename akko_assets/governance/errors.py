"""Errors of the governed read path. Messages are one line: they go straight to stderr."""

from __future__ import annotations


class AccessDenied(Exception):
    """The caller may not run this: bad identity, forbidden statement, table or policy answer."""

    def __init__(self, reason: str) -> None:
        # One line, always: the CLI prints it as is and exits 2.
        super().__init__(" ".join(str(reason).split()))

    @property
    def reason(self) -> str:
        return str(self)


class QueryError(Exception):
    """An allowed query failed in the engine (missing table, type error, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(str(reason).split()))
