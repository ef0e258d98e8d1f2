"""Exceptions. One root, specific subclasses that also inherit the matching built-in.

Every input problem is a :class:`InputProblem`: the file, the field, what is wrong and the fix.
Validation collects all problems and raises them at once as :class:`InputValidationError`.
Each error class carries the exit status the ``gep`` command returns for it.
"""
from __future__ import annotations

from dataclasses import dataclass


class GepError(Exception):
    """Root of all errors raised by gep."""

    exit_status = 1


@dataclass(frozen=True)
class InputProblem:
    """One thing wrong with one input: where it is, what it is, how to fix it."""

    file: str
    field: str
    problem: str
    fix: str
    county: str | None = None  # the county the problem concerns, if one (for the run record)

    def __str__(self) -> str:
        return f"{self.file} [{self.field}]: {self.problem}\n    fix: {self.fix}"


class InputValidationError(GepError, ValueError):
    """One or more inputs are unusable; nothing has been computed or written."""

    exit_status = 2

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(dict.fromkeys(problems))  # the same problem found twice is reported once
        lines = [f"{len(self.problems)} input problem(s); nothing was computed or written:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class InputReadError(GepError, OSError):
    """An input file that validated could not be read during the pass (a corrupt tile, a lost share).

    An OSError, so Prefect tasks retry it (a network hiccup); if it persists, the run stops cleanly."""

    exit_status = 2


class OutputError(GepError, OSError):
    """The output directory cannot take this run (not writable, locked, full); the previous
    outputs are unchanged."""

    exit_status = 3


class OutputLockedError(OutputError):
    """Another run holds the output directory."""

    exit_status = 4


def fail(file: str, field: str, problem: str, fix: str) -> InputValidationError:
    """Shorthand for a single-problem validation error."""
    return InputValidationError([InputProblem(str(file), field, problem, fix)])
