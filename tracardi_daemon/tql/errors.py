"""Errors of the condition language: syntax errors carry a position, the others name the
function, field or value at fault."""

from __future__ import annotations

from collections.abc import Sequence

from tracardi_daemon.errors import InvalidInput


class TqlError(InvalidInput):
    """A condition that parses but cannot be compiled: an unknown function, a wrong
    argument, a type error, or something a back end cannot do."""


class TqlSyntaxError(TqlError):
    """A condition that does not parse. ``line`` and ``column`` start at 1."""

    def __init__(self, message: str, *, line: int, column: int, text: str,
                 expected: Sequence[str] = (), source: str = "") -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.text = text
        self.expected = tuple(expected)
        self.source = source
        detail = f"line {line}, column {column}: {message}"
        if self.expected:
            detail += f"; expected {_one_of(self.expected)}"
        super().__init__(detail)

    def pointer(self) -> str:
        """The offending line of the condition with a caret under the error."""
        lines = self.source.splitlines() or [""]
        shown = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        return f"{shown}\n{' ' * (self.column - 1)}^"


def _one_of(items: Sequence[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]
