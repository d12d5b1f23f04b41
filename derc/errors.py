"""Errors that name the record (or file) and the problem, so a user can act on them."""

from __future__ import annotations


class DercError(Exception):
    """Base class of the package's own errors."""


class RecordError(DercError, ValueError):
    """A record (header, signal or image) cannot be used; the message names it and why."""

    def __init__(self, record: str, problem: str) -> None:
        self.record = str(record)
        self.problem = problem
        super().__init__(f"record {self.record}: {problem}")


class ModelFolderError(DercError, ValueError):
    """A model folder is missing, incomplete, tampered with or from another program."""
