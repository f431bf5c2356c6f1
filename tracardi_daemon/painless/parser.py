"""Script text to lark parse tree, refusing with line, column and construct: a syntax
error, a reserved word of a construct the interpreter does not support, or an operator
outside the subset."""

from __future__ import annotations

from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from tracardi_daemon.painless.errors import ScriptRefused

MAX_SOURCE_CHARS = 65_536
# Java's reserved words of statements the subset leaves out: refused by name rather than
# as the syntax error they would cause a token later
_UNSUPPORTED_WORDS = {
    "while": "a while loop", "do": "a do-while loop", "switch": "a switch",
    "case": "a switch", "break": "break", "continue": "continue", "return": "return",
    "throw": "throw", "finally": "finally", "instanceof": "instanceof", "this": "this",
    "super": "super", "class": "a class", "static": "static", "final": "final",
    "goto": "goto", "synchronized": "synchronized", "import": "import",
}
_OPERATOR_NAMES = {
    "++": "increment '++'", "--": "decrement '--'", "->": "a lambda '->'",
    "::": "a method reference '::'", "=~": "a regex find '=~'", "==~": "a regex match '==~'",
}


@cache
def _lark() -> Lark:
    grammar = resources.files("tracardi_daemon.painless").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=False)


def parse(source: str, where: str) -> Tree[Token]:
    """The parse tree of a script, or ScriptRefused naming where, line and column."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ScriptRefused(where, 1, 1, "script",
                            f"is {len(source)} characters, more than {MAX_SOURCE_CHARS}")
    try:
        _check_tokens(source, where)
        return _lark().parse(source)
    except UnexpectedInput as exc:
        raise _refusal(exc, source, where) from None


def _check_tokens(source: str, where: str) -> None:
    for token in _lark().lex(source):
        if token.type == "NAME" and token.value in _UNSUPPORTED_WORDS:
            raise ScriptRefused(where, token.line or 1, token.column or 1,
                                _UNSUPPORTED_WORDS[token.value], "is not supported")
        if token.type == "UNSUPPORTED_OP":
            name = _OPERATOR_NAMES.get(token.value)
            if name is None:
                kind = "a compound assignment" if token.value.endswith("=") else "an operator"
                name = f"{kind} '{token.value}'"
            raise ScriptRefused(where, token.line or 1, token.column or 1, name,
                                "is not supported")


def _refusal(exc: UnexpectedInput, source: str, where: str) -> ScriptRefused:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, UnexpectedCharacters):
        char = source[exc.pos_in_stream or 0]
        construct = ("a string with an escape other than \\\\ and its quote"
                     if char in "\"'" else repr(char))
        return ScriptRefused(where, line, column, construct,
                             "cannot be read (not painless, or outside the supported subset)")
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken)
                                          and exc.token.type == "$END"):
        end = source.rstrip()
        line = end.count("\n") + 1
        column = len(end) - (end.rfind("\n") + 1) + 1
        return ScriptRefused(where, line, column, "the end of the script",
                             "comes too early (a missing ';', ')' or '}')")
    token = exc.token if isinstance(exc, UnexpectedToken) else None
    construct = repr(str(token)) if token is not None else "a token"
    return ScriptRefused(where, line, column, construct,
                         "is unexpected here (not painless, or outside the supported subset)")
