"""Condition text to syntax tree with lark (LALR), and lark's errors to TqlSyntaxError
with a line, a column, the offending text and what was expected."""

from __future__ import annotations

import math
import re
from functools import cache
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from tracardi_daemon.tql import ast
from tracardi_daemon.tql.errors import TqlError, TqlSyntaxError
from tracardi_daemon.tql.functions import check_call
from tracardi_daemon.tql.limits import (
    MAX_FIELD_CHARS,
    MAX_STRING_CHARS,
    check_text,
    check_tree,
    short,
)
from tracardi_daemon.tql.values import duration_seconds

_PATH_PART = re.compile(r"\.?([\w$-]+)|\[\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\s*\]")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
            "/": "/", "\\": "\\", '"': '"', "'": "'"}
_OPERATOR_SPELLINGS = {"=": "==", "=>": ">=", "=<": "<="}

_VALUE_TERMINALS = ("STRING", "NUMBER", "DURATION", "_TRUE", "_FALSE", "_NULL", "FUNCTION",
                    "LSQB")
_EXPECTED_NAMES = {
    "FIELD": "a field like profile@traits.age",
    "COMPARE_OP": "an operator (==, !=, >, >=, <, <=)",
    "LPAR": "'('", "RPAR": "')'", "RSQB": "']'", "COMMA": "','",
    "_AND": "AND", "_OR": "OR", "_NOT": "NOT", "_BETWEEN": "BETWEEN", "_IS": "IS",
    "_NULL": "NULL", "_EXISTS": "EXISTS", "_EMPTY": "EMPTY", "_CONTAINS": "CONTAINS",
    "_STARTS": "STARTS WITH", "_ENDS": "ENDS WITH", "_WITH": "WITH",
    "$END": "the end of the condition",
}
_EXPECTED_ORDER = list(_EXPECTED_NAMES)


@cache
def _lark() -> Lark:
    grammar = resources.files("tracardi_daemon.tql").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=False,
                maybe_placeholders=False)


def parse(text: str) -> ast.Node:
    """The syntax tree of a condition; TqlSyntaxError or TqlError if it is not one, or
    if it is larger than tql.limits allows."""
    check_text(text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    check_tree(tree, text)
    try:
        node: ast.Node = _Builder(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, TqlError):
            raise exc.orig_exc from None
        raise
    return node


def _syntax_error(exc: UnexpectedInput, text: str) -> TqlSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_word(text, exc.pos_in_stream or 0, exc.line, exc.column,
                         exc.allowed or set())
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        if token.start_pos is not None and text[token.end_pos or 0:][:1] == "@":
            # "profile@ EXISTS": a source followed by nothing the field pattern accepts
            return _bad_word(text, token.start_pos, token.line or 1, token.column or 1,
                             exc.expected)
        reason = f"unexpected {short(str(token.value))}"
        if set(exc.expected) == {"LPAR"}:
            reason += " after a bare word (strings are written in quotes)"
        return TqlSyntaxError(reason, line=token.line or 1, column=token.column or 1,
                              text=str(token.value), expected=_describe(_acceptable(exc)),
                              source=text)
    line, column = _end_position(text)
    expected = _acceptable(exc) if isinstance(exc, UnexpectedToken) else set()
    reason = "unexpected end of the condition"
    if expected == {"LPAR"}:
        reason += " (strings are written in quotes)"
    return TqlSyntaxError(reason, line=line, column=column, text="",
                          expected=_describe(expected), source=text)


def _acceptable(exc: UnexpectedToken) -> set[str]:
    # LALR merges states, so `expected` may list tokens that could not follow here;
    # `accepts` is computed by trying each one
    return set(exc.accepts or exc.expected)


def _bad_word(text: str, position: int, line: int, column: int,
              expected: set[str] | frozenset[str]) -> TqlSyntaxError:
    """An error about the word at ``position``, which no token pattern accepts."""
    word_match = re.match(r"[^\s()\[\],]+|.", text[position:])
    word = word_match.group(0) if word_match else ""
    reason = f"unexpected {short(word)}"
    if word[:1] in ("'", '"'):
        reason, word = "unterminated string", word[:1]
    elif "@" in word:
        reason = f"malformed field {short(word)}"
    return TqlSyntaxError(reason, line=line, column=column, text=word,
                          expected=_describe(expected), source=text)


def _describe(terminals: set[str] | frozenset[str]) -> list[str]:
    names = set(terminals)
    described = []
    if {"STRING", "NUMBER"} <= names:
        described.append("a value (string, number, TRUE, FALSE, NULL, [array], function)")
        names -= set(_VALUE_TERMINALS)
    known = sorted((name for name in names if name in _EXPECTED_NAMES),
                   key=_EXPECTED_ORDER.index)
    return [_EXPECTED_NAMES[name] for name in known] + described


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    lines = stripped.split("\n")
    return len(lines), len(lines[-1]) + 1


def _error_at(token: Token, source: str, reason: str) -> TqlSyntaxError:
    return TqlSyntaxError(reason, line=token.line or 1, column=token.column or 1,
                          text=str(token.value), source=source)


def unquote(quoted: str) -> str:
    """The text of a quoted string literal; ValueError on an unknown escape."""
    body, out, index = quoted[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape == "u":
            code = body[index + 2:index + 6]
            if not re.fullmatch(r"[0-9a-fA-F]{4}", code):
                raise ValueError(f"bad escape \\u{code}")
            out.append(chr(int(code, 16)))
            index += 6
        elif escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            index += 2
        else:
            raise ValueError(f"unknown escape \\{escape}")
    # a JSON-style surrogate pair written as two \u escapes becomes one character
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


@v_args(inline=True)
class _Builder(Transformer[Token, ast.Node]):
    """lark tree to ast nodes; one method per grammar alias."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self._source = source

    def start(self, node: ast.Node) -> ast.Node:
        return node

    # boolean structure: nested ANDs (ORs) flatten, the meaning is the same

    def or_test(self, *operands: ast.Node) -> ast.Node:
        return ast.Or(_flatten(ast.Or, operands))

    def and_test(self, *operands: ast.Node) -> ast.Node:
        return ast.And(_flatten(ast.And, operands))

    def negation(self, operand: ast.Node) -> ast.Node:
        return ast.Not(operand)

    # conditions

    def compare(self, field: Token, op: Token, value: ast.Value | ast.Field) -> ast.Node:
        operator = _OPERATOR_SPELLINGS.get(str(op), str(op))
        return ast.Compare(self._field(field), operator, value)

    def between(self, field: Token, low: ast.Value, high: ast.Value) -> ast.Node:
        return ast.Between(self._field(field), low, high)

    def is_null(self, field: Token) -> ast.Node:
        return ast.Not(ast.Exists(self._field(field)))

    def is_not_null(self, field: Token) -> ast.Node:
        return ast.Exists(self._field(field))

    def exists(self, field: Token) -> ast.Node:
        return ast.Exists(self._field(field))

    def not_exists(self, field: Token) -> ast.Node:
        return ast.Not(ast.Exists(self._field(field)))

    def empty(self, field: Token) -> ast.Node:
        return ast.Empty(self._field(field))

    def not_empty(self, field: Token) -> ast.Node:
        return ast.Not(ast.Empty(self._field(field)))

    def contains(self, field: Token, value: ast.Value) -> ast.Node:
        return ast.TextMatch(self._field(field), "CONTAINS", value)

    def starts_with(self, field: Token, value: ast.Value) -> ast.Node:
        return ast.TextMatch(self._field(field), "STARTS WITH", value)

    def ends_with(self, field: Token, value: ast.Value) -> ast.Node:
        return ast.TextMatch(self._field(field), "ENDS WITH", value)

    # values

    def field_operand(self, field: Token) -> ast.Field:
        return self._field(field)

    def string(self, token: Token) -> ast.Value:
        return ast.Literal(self._unquote(token))

    def number(self, token: Token) -> ast.Value:
        text = str(token)
        value: int | float = float(text) if re.search(r"[.eE]", text) else int(text)
        if not math.isfinite(value):
            raise _error_at(token, self._source, "number out of range")
        return ast.Literal(value)

    def duration(self, token: Token) -> ast.Value:
        return ast.Duration(str(token), duration_seconds(str(token)))

    def true(self) -> ast.Value:
        return ast.Literal(True)

    def false(self) -> ast.Value:
        return ast.Literal(False)

    def null(self) -> ast.Value:
        return ast.Literal(None)

    def array(self, *items: ast.Value) -> ast.Value:
        return ast.Array(tuple(items))

    def call(self, name: Token, *args: ast.Value) -> ast.Value:
        function_name = str(name).lower()
        try:
            check_call(function_name, len(args))
        except TqlError as exc:
            raise TqlError(f"line {name.line}, column {name.column}: {exc}") from None
        return ast.Call(function_name, tuple(args))

    # helpers

    def _unquote(self, token: Token) -> str:
        try:
            value = unquote(str(token))
        except ValueError as exc:
            raise _error_at(token, self._source, f"{exc} in string") from None
        if len(value) > MAX_STRING_CHARS:
            raise _error_at(token, self._source, f"string {short(value)} is longer than "
                                                 f"{MAX_STRING_CHARS:,} characters")
        return value

    def _field(self, token: Token) -> ast.Field:
        if len(token) > MAX_FIELD_CHARS:
            raise _error_at(token, self._source, f"field {short(str(token))} is longer "
                                                 f"than {MAX_FIELD_CHARS} characters")
        source, _, rest = str(token).partition("@")
        if source.lower() not in ast.SOURCES:
            raise _error_at(token, self._source, f"unknown field source {source!r}; "
                            f"use {', '.join(s + '@' for s in ast.SOURCES)}")
        path = []
        for match in _PATH_PART.finditer(rest):
            plain, quoted = match.groups()
            try:
                key = plain if plain is not None else unquote(quoted)
            except ValueError as exc:
                raise _error_at(token, self._source,
                                f"{exc} in {short(str(token))}") from None
            if not key or "." in key:
                # Elasticsearch reads a dot in a key as a nested path; the two would differ
                raise _error_at(token, self._source,
                                f"key {short(key)} in {short(str(token))} is empty or "
                                "contains a dot")
            path.append(key)
        return ast.Field(source.lower(), tuple(path))


def _flatten(kind: type[ast.And] | type[ast.Or],
             operands: tuple[ast.Node, ...]) -> tuple[ast.Node, ...]:
    flat: list[ast.Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return tuple(flat)

