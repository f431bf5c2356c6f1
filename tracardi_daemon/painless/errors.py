"""The interpreter's errors: a script refused when it is compiled (syntax, or a construct
outside the supported subset) and a script that throws while it runs on one document."""

from __future__ import annotations

from tracardi_daemon.errors import InvalidInput

# painless's exception classes the interpreter throws, each with its superclass: a
# catch clause catches its own class and every class below it
EXCEPTION_PARENTS: dict[str, str] = {
    "Exception": "",
    "RuntimeException": "Exception",
    "NullPointerException": "RuntimeException",
    "ClassCastException": "RuntimeException",
    "IllegalArgumentException": "RuntimeException",
    "NumberFormatException": "IllegalArgumentException",
    "IllegalStateException": "RuntimeException",
    "ArithmeticException": "RuntimeException",
    "UnsupportedOperationException": "RuntimeException",
    "NegativeArraySizeException": "RuntimeException",
    "IndexOutOfBoundsException": "RuntimeException",
    "ArrayIndexOutOfBoundsException": "IndexOutOfBoundsException",
    "StringIndexOutOfBoundsException": "IndexOutOfBoundsException",
}


def is_a(exception: str, catchable: str) -> bool:
    """Whether an exception of class ``exception`` is caught by ``catch (catchable e)``."""
    while exception:
        if exception == catchable:
            return True
        exception = EXCEPTION_PARENTS[exception]
    return False


class ScriptRefused(InvalidInput):
    """A script that does not parse, or uses a construct the interpreter does not support;
    raised when it is compiled, before any document."""

    def __init__(self, where: str, line: int, column: int, construct: str,
                 reason: str) -> None:
        super().__init__(f"{where}: line {line}, column {column}: {construct}: {reason}")
        self.where = where
        self.line = line
        self.column = column
        self.construct = construct
        self.reason = reason


class ScriptFailed(InvalidInput):
    """A script that threw on one document (painless's NullPointerException,
    ClassCastException ...); that document fails, not the script."""

    def __init__(self, where: str, line: int, column: int, exception: str,
                 detail: str) -> None:
        super().__init__(f"{where}: line {line}, column {column}: {exception}: {detail}")
        self.where = where
        self.line = line
        self.column = column
        self.exception = exception
        self.detail = detail


class Thrown(Exception):
    """A painless exception in flight inside a running script; ``try``/``catch`` catches
    it and Script.run turns it into ScriptFailed. Also the value ``e`` of a catch clause."""

    def __init__(self, exception: str, detail: str, line: int, column: int) -> None:
        super().__init__(f"{exception}: {detail}")
        self.exception = exception
        self.detail = detail
        self.line = line
        self.column = column
