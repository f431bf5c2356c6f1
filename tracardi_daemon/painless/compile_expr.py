"""Parse tree of an expression to a Python closure over the frame (the list of a running
script's variables): compiled once per script, called once per document. Constructs
outside the subset, unknown variables, types and methods are refused here."""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from operator import itemgetter
from typing import Any, NoReturn

from lark import Token, Tree

from tracardi_daemon.painless import values
from tracardi_daemon.painless.access import (
    SUPPORTED_TYPES,
    Cast,
    cast_to,
)
from tracardi_daemon.painless.chains import Expr, Frame, Make
from tracardi_daemon.painless.errors import ScriptRefused, Thrown
from tracardi_daemon.painless.methods import as_list, as_map
from tracardi_daemon.painless.scope import Scope
from tracardi_daemon.painless.values import PainlessArray, Pos

Node = Tree[Token] | Token
_BINARY: dict[str, Callable[[Any, Any, Pos], Any]] = {
    "+": values.add, "-": values.subtract, "*": values.multiply, "/": values.divide,
    "%": values.remainder, "<": values.compare("<"), "<=": values.compare("<="),
    ">": values.compare(">"), ">=": values.compare(">="),
}
_EQUALITY: dict[str, Callable[[Any, Any], bool]] = {
    "==": values.equals, "!=": lambda a, b: not values.equals(a, b),
}
# painless's === and !== compare Java references: whether a string read from a document
# is the same object as a constant, or a boxed 1000 the same as another, is the JVM's
# business, which no closure over Python values can reproduce
IDENTITY_OPERATORS = frozenset(("===", "!=="))
_LITERALS = ("null", "true", "false", "int_lit", "float_lit", "string_lit")


def token_of(node: Node) -> Token:
    """The token of a one-token rule (a name, a field name), or the token itself."""
    while isinstance(node, Tree):
        node = node.children[0]
    return node


def position(node: Node) -> Pos:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    if not node.meta.empty:
        return node.meta.line, node.meta.column
    for child in node.children:  # an empty rule's meta: its first token's
        return position(child)
    return 1, 1


class ExpressionCompiler:
    """Expressions; StatementCompiler adds statements and owns the scope."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.scope = Scope(where)

    def refuse(self, node: Node, construct: str, reason: str) -> NoReturn:
        line, column = position(node)
        raise ScriptRefused(self.where, line, column, construct, reason)

    def expr(self, node: Node) -> Expr:
        if isinstance(node, Token):
            self.refuse(node, repr(str(node)), "is not an expression")
        compile_rule = getattr(self, f"_{node.data}", None)
        if compile_rule is None:
            self.refuse(node, str(node.data), "is not supported here")
        result: Expr = compile_rule(node)
        return result

    def cast_of(self, node: Tree[Token], explicit: bool = False) -> tuple[str, int, Cast | None]:
        """(type name, array dimensions, cast) of a ``type`` node."""
        name = str(node.children[0])
        dims = str(node.children[1]).count("[") if len(node.children) > 1 else 0
        if name not in SUPPORTED_TYPES:
            self.refuse(node, f"type '{name}'", "is not supported (use def, Map, List, "
                                                "String, a number or boolean)")
        return name, dims, cast_to(name, dims, explicit)

    # -- values ---------------------------------------------------------------------

    def _null(self, node: Tree[Token]) -> Expr:
        return lambda frame: None

    def _true(self, node: Tree[Token]) -> Expr:
        return lambda frame: True

    def _false(self, node: Tree[Token]) -> Expr:
        return lambda frame: False

    def _int_lit(self, node: Tree[Token]) -> Expr:
        number = self.int_literal(node)
        return lambda frame: number

    def int_literal(self, node: Tree[Token], negative: bool = False) -> int:
        """The value of an integer literal, under a minus when ``negative`` (one more
        magnitude fits then: -2147483648 is an int, as in Java)."""
        text = str(node.children[0])
        number = int(text.rstrip("lL"))
        limit = values.LONG_MAX if text[-1] in "lL" else values.INT_MAX
        if number > limit + negative:
            self.refuse(node, f"the number {text}", "is out of range for its type")
        return -number if negative else number

    def _float_lit(self, node: Tree[Token]) -> Expr:
        number = float(str(node.children[0]).rstrip("dDfF"))
        return lambda frame: number

    def _string_lit(self, node: Tree[Token]) -> Expr:
        text = str(node.children[0])
        quote = text[0]
        value = text[1:-1].replace("\\\\", "\0").replace("\\" + quote, quote).replace("\0", "\\")
        return lambda frame: value

    def _var(self, node: Tree[Token]) -> Expr:
        # itemgetter reads the slot without a Python frame of its own
        read: Expr = itemgetter(self.scope.lookup(token_of(node)).slot)
        return read

    def make_of(self, node: Node) -> Make | None:
        """A right-hand side computed without the frame (a literal, a new empty map or
        list), for stores to inline; None for every other expression."""
        if not isinstance(node, Tree):
            return None
        if node.data in _LITERALS:
            return repeat(self.expr(node)([])).__next__
        empty = not any(isinstance(child, Tree) and child.children for child in node.children)
        if node.data == "new_object" and empty:
            return {"HashMap": dict, "ArrayList": list}.get(str(node.children[0]))
        if node.data in ("map_lit", "list_lit") and empty:
            return dict if node.data == "map_lit" else list
        if node.data == "empty_list" and str(node.children[0]).count("[") == 1:
            return list
        return None

    def folded(self, make: Make, cast: Cast | None, pos: Pos) -> Make | None:
        """``make`` with a variable's cast applied once when compiling, when the cast
        accepts its value (None: the cast throws, which must happen when it runs)."""
        if cast is None:
            return make
        try:
            sample = make()
            converted = cast(sample, pos)
        except Thrown:
            return None
        if converted is sample:
            return make
        return repeat(converted).__next__ if make not in (dict, list) else None

    def _map_lit(self, node: Tree[Token]) -> Expr:
        entries = tuple((self.expr(entry.children[0]), self.expr(entry.children[1]))
                        for entry in node.children if isinstance(entry, Tree))
        return lambda frame: {key(frame): value(frame) for key, value in entries}

    def _list_lit(self, node: Tree[Token]) -> Expr:
        items = self.args(node.children[0])
        return lambda frame: [item(frame) for item in items]

    def _empty_list(self, node: Tree[Token]) -> Expr:
        if str(node.children[0]).count("[") != 1:
            self.refuse(node, repr(str(node.children[0])), "is not an expression")
        return lambda frame: []

    def args(self, node: Node) -> tuple[Expr, ...]:
        return tuple(self.expr(child) for child in node.children) if isinstance(
            node, Tree) else ()

    def _new_object(self, node: Tree[Token]) -> Expr:
        name, args = str(node.children[0]), self.args(node.children[1])
        pos = position(node)
        if name == "HashMap" and len(args) <= 1:
            if not args:
                return lambda frame: {}
            source = args[0]
            return lambda frame: dict(as_map(source(frame), pos, "new HashMap"))
        if name == "ArrayList" and len(args) <= 1:
            if not args:
                return lambda frame: []
            items = args[0]
            return lambda frame: list(as_list(items(frame), pos, "new ArrayList"))
        self.refuse(node, f"new {name}() with {len(args)} arguments",
                    "is not supported (new HashMap() and new ArrayList() are)")

    def _new_array_init(self, node: Tree[Token]) -> Expr:
        name, dims = str(node.children[0]), str(node.children[1]).count("[")
        if dims != 1 or name not in SUPPORTED_TYPES:
            self.refuse(node, f"an array of {name}{'[]' * dims}", "is not supported")
        cast, items = cast_to(name, 0), self.args(node.children[2])
        pos = position(node)
        if cast is None:
            return lambda frame: PainlessArray(name, [item(frame) for item in items])
        return lambda frame: PainlessArray(name, [cast(item(frame), pos) for item in items])

    def _new_array_size(self, node: Tree[Token]) -> Expr:
        name, size = str(node.children[0]), self.expr(node.children[1])
        if name not in SUPPORTED_TYPES:
            self.refuse(node, f"an array of {name}", "is not supported")
        default, pos = values.PRIMITIVE_DEFAULTS.get(name), position(node)

        def new_array(frame: Frame) -> Any:
            length = size(frame)
            if type(length) is not int:
                values.throw("ClassCastException",
                             f"cannot cast [{values.class_name(length)}] to [int]", pos)
            if length < 0:
                values.throw("NegativeArraySizeException", str(length), pos)
            return PainlessArray(name, [default] * length)

        return new_array

    def _unsupported(self, node: Tree[Token]) -> Expr:
        self.refuse(node, f"'{node.children[0]}'", "is not supported")
