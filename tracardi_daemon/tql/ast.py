"""The condition's syntax tree, as the parser builds it, and its canonical text form
(``str(node)``), which parses back to the same tree."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

SOURCES = ("profile", "event", "session", "payload")
COMPARE_OPS = ("==", "!=", ">", ">=", "<", "<=")
TEXT_OPS = ("CONTAINS", "STARTS WITH", "ENDS WITH")

_PLAIN_KEY = re.compile(r"[\w$-]+")

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Field:
    """``profile@traits.age``: a document (``source``) and the keys into it."""

    source: str
    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """The path as Elasticsearch names the field."""
        return ".".join(self.path)

    def __str__(self) -> str:
        text = self.source + "@"
        for index, key in enumerate(self.path):
            if not _PLAIN_KEY.fullmatch(key):
                text += f"[{_quote(key)}]"
            else:
                text += key if index == 0 else "." + key
        return text


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, boolean or NULL written in the condition."""

    value: Scalar

    def __str__(self) -> str:
        if self.value is None:
            return "NULL"
        if isinstance(self.value, bool):
            return "TRUE" if self.value else "FALSE"
        if isinstance(self.value, str):
            return _quote(self.value)
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class Duration:
    """``30d``: a length of time, kept as written and in seconds."""

    text: str
    seconds: float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Call:
    """``now.offset("-30d")``: a function, resolved when the condition is compiled."""

    name: str
    args: tuple[Value, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(arg) for arg in self.args)})"


@dataclass(frozen=True, slots=True)
class Array:
    """``[1, "a"]``: a list of values."""

    items: tuple[Value, ...]

    def __str__(self) -> str:
        return f"[{', '.join(str(item) for item in self.items)}]"


Value = Literal | Duration | Call | Array


@dataclass(frozen=True, slots=True)
class Compare:
    """``field OP value`` or ``field OP field``; OP is one of COMPARE_OPS."""

    field: Field
    op: str
    value: Value | Field

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class Between:
    """``field BETWEEN low AND high``, both ends included."""

    field: Field
    low: Value
    high: Value

    def __str__(self) -> str:
        return f"{self.field} BETWEEN {self.low} AND {self.high}"


@dataclass(frozen=True, slots=True)
class Exists:
    """``field EXISTS`` (also ``IS NOT NULL``)."""

    field: Field

    def __str__(self) -> str:
        return f"{self.field} EXISTS"


@dataclass(frozen=True, slots=True)
class Empty:
    """``field EMPTY``: no value, or an empty string."""

    field: Field

    def __str__(self) -> str:
        return f"{self.field} EMPTY"


@dataclass(frozen=True, slots=True)
class TextMatch:
    """``field CONTAINS value``, ``STARTS WITH`` or ``ENDS WITH``; OP is one of TEXT_OPS."""

    field: Field
    op: str
    value: Value

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        return f"NOT {_grouped(self.operand)}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_grouped(operand) for operand in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(_grouped(operand) for operand in self.operands)


Node = Compare | Between | Exists | Empty | TextMatch | Not | And | Or


def fields_of(node: Node) -> list[Field]:
    """Every field the condition reads, in order of appearance."""
    if isinstance(node, And | Or):
        return [field for operand in node.operands for field in fields_of(operand)]
    if isinstance(node, Not):
        return fields_of(node.operand)
    fields = [node.field]
    if isinstance(node, Compare) and isinstance(node.value, Field):
        fields.append(node.value)
    return fields


def _grouped(node: Node) -> str:
    # parentheses around every AND/OR inside another operator make precedence visible
    return f"({node})" if isinstance(node, And | Or) else str(node)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
