"""Exceptions. One root, specific subclasses that also inherit the matching built-in.

Every input problem is a :class:`InputProblem`: the file, the field, what is wrong and the fix.
Validation collects all problems and raises them at once as :class:`InputValidationError`.
"""
from __future__ import annotations

from dataclasses import dataclass


class GepError(Exception):
    """Root of all errors raised by gep."""


@dataclass(frozen=True)
class InputProblem:
    """One thing wrong with one input: where it is, what it is, how to fix it."""

    file: str
    field: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file} [{self.field}]: {self.problem}\n    fix: {self.fix}"


class InputValidationError(GepError, ValueError):
    """One or more inputs are unusable; nothing has been computed or written."""

    def __init__(self, problems: list[InputProblem]):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} input problem(s); nothing was computed or written:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def fail(file: str, field: str, problem: str, fix: str) -> InputValidationError:
    """Shorthand for a single-problem validation error."""
    return InputValidationError([InputProblem(str(file), field, problem, fix)])
