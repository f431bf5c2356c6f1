"""Closures for painless's operators, member access, method calls and assignment: the
map-field case is inlined (the hot path of every plan script), the rest goes to the full
rules in access.py and values.py."""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from tracardi_daemon.painless import values
from tracardi_daemon.painless.access import get_field, get_index, set_field, set_index
from tracardi_daemon.painless.compile_expr import (
    _BINARY,
    _EQUALITY,
    IDENTITY_OPERATORS,
    Expr,
    ExpressionCompiler,
    Frame,
    Node,
    position,
    token_of,
)
from tracardi_daemon.painless.methods import KNOWN_METHODS, not_found, resolve
from tracardi_daemon.painless.values import Pos, as_boolean


class OperatorCompiler(ExpressionCompiler):
    def _field(self, node: Tree[Token]) -> Expr:
        # a chain a.b.c.d is one closure walking its keys: plan scripts are mostly chains
        steps: list[tuple[str, Pos]] = []
        base: Node = node
        while isinstance(base, Tree) and base.data == "field":
            steps.append((str(token_of(base.children[1])), position(base.children[1])))
            base = base.children[0]
        steps.reverse()
        if isinstance(base, Tree) and base.data == "var":
            slot = self.scope.lookup(token_of(base)).slot
            return _walk_variable(slot, tuple(steps))
        return _walk(self.expr(base), tuple(steps))

    def _safe_field(self, node: Tree[Token]) -> Expr:
        target, key = self.expr(node.children[0]), str(token_of(node.children[1]))
        pos = position(node.children[1])

        def read(frame: Frame) -> Any:
            value = target(frame)
            if value is None:
                return None
            if type(value) is dict:
                return value.get(key)
            return get_field(value, key, pos)

        return read

    def _call(self, node: Tree[Token], null_safe: bool = False) -> Expr:
        target, name_node, args_node = node.children
        name = str(token_of(name_node))
        args = self.args(args_node)
        if name not in KNOWN_METHODS:
            self.refuse(name_node, f"method '{name}'", "is not supported")
        methods = resolve(name, len(args))
        if not methods:
            self.refuse(name_node, f"method '{name}' with {len(args)} arguments",
                        "is not supported")
        receiver, pos, arity = self.expr(target), position(name_node), len(args)

        if arity == 1:
            first = args[0]

            def call_one(frame: Frame) -> Any:
                value = receiver(frame)
                method = methods.get(type(value))
                if method is None:
                    return None if null_safe and value is None else not_found(
                        value, name, arity, pos)
                return method(value, [first(frame)], pos)

            return call_one

        def call(frame: Frame) -> Any:
            value = receiver(frame)
            method = methods.get(type(value))
            if method is None:
                if null_safe and value is None:
                    return None
                return not_found(value, name, arity, pos)
            return method(value, [arg(frame) for arg in args], pos)

        return call

    def _safe_call(self, node: Tree[Token]) -> Expr:
        return self._call(node, null_safe=True)

    def _index(self, node: Tree[Token]) -> Expr:
        target, index = self.expr(node.children[0]), self.expr(node.children[1])
        pos = position(node)
        return lambda frame: get_index(target(frame), index(frame), pos)

    def _assign(self, node: Tree[Token]) -> Expr:
        target, value = node.children[0], self.expr(node.children[1])
        if isinstance(target, Tree) and target.data == "var":
            return self._assign_variable(target, value)
        if isinstance(target, Tree) and target.data == "field":
            owner, key = self.expr(target.children[0]), str(token_of(target.children[1]))
            pos = position(target.children[1])

            def assign_field(frame: Frame) -> Any:
                container, result = owner(frame), value(frame)
                if type(container) is dict:
                    container[key] = result
                else:
                    set_field(container, key, result, pos)
                return result

            return assign_field
        if isinstance(target, Tree) and target.data == "index":
            owner, index = self.expr(target.children[0]), self.expr(target.children[1])
            pos = position(target)

            def assign_index(frame: Frame) -> Any:
                container, key, result = owner(frame), index(frame), value(frame)
                set_index(container, key, result, pos)
                return result

            return assign_index
        what = target.data if isinstance(target, Tree) else str(target)
        self.refuse(target, f"assignment to {what}", "is not supported (assign to a "
                                                     "variable, a field or an index)")

    def _assign_variable(self, target: Tree[Token], value: Expr) -> Expr:
        name = token_of(target)
        variable = self.scope.lookup(name)
        if variable.read_only:
            self.refuse(target, f"assignment to '{name}'", "is not allowed (it is read-only)")
        slot, cast, pos = variable.slot, variable.cast, position(target)
        if cast is None:
            def assign(frame: Frame) -> Any:
                frame[slot] = result = value(frame)
                return result

            return assign

        def assign_cast(frame: Frame) -> Any:
            frame[slot] = result = cast(value(frame), pos)
            return result

        return assign_cast

    def _elvis(self, node: Tree[Token]) -> Expr:
        left, right = self.expr(node.children[0]), self.expr(node.children[1])

        def elvis(frame: Frame) -> Any:
            result = left(frame)
            return right(frame) if result is None else result

        return elvis

    def _ternary(self, node: Tree[Token]) -> Expr:
        test, yes, no = (self.expr(child) for child in node.children)
        pos = position(node)
        return lambda frame: yes(frame) if as_boolean(test(frame), pos) else no(frame)

    def _or_op(self, node: Tree[Token]) -> Expr:
        left, right = self.expr(node.children[0]), self.expr(node.children[1])
        pos_left, pos_right = position(node.children[0]), position(node.children[1])
        return lambda frame: (as_boolean(left(frame), pos_left)
                              or as_boolean(right(frame), pos_right))

    def _and_op(self, node: Tree[Token]) -> Expr:
        left, right = self.expr(node.children[0]), self.expr(node.children[1])
        pos_left, pos_right = position(node.children[0]), position(node.children[1])
        return lambda frame: (as_boolean(left(frame), pos_left)
                              and as_boolean(right(frame), pos_right))

    def _binary(self, node: Tree[Token]) -> Expr:
        left_node, operator, right_node = node.children
        left, right, op = self.expr(left_node), self.expr(right_node), str(operator)
        if op in IDENTITY_OPERATORS:
            self.refuse(operator, f"'{op}'", "is not supported (it compares Java "
                                             "references; use == or !=)")
        if op in ("==", "!=") and _is_null(left_node) and _is_null(right_node):
            self.refuse(node, "a comparison of two nulls", "is refused by painless "
                                                           "(extraneous comparison)")
        if op in ("==", "!=") and _is_null(right_node):
            if op == "==":
                return lambda frame: left(frame) is None
            return lambda frame: left(frame) is not None
        if op in _EQUALITY:
            test = _EQUALITY[op]
            return lambda frame: test(left(frame), right(frame))
        apply, pos = _BINARY[op], position(operator)
        return lambda frame: apply(left(frame), right(frame), pos)

    def _not_op(self, node: Tree[Token]) -> Expr:
        operand, pos = self.expr(node.children[0]), position(node)
        return lambda frame: not as_boolean(operand(frame), pos)

    def _sign(self, node: Tree[Token]) -> Expr:
        operator, operand_node = node.children
        if str(operator) == "-" and isinstance(operand_node, Tree) and (
                operand_node.data == "int_lit"):
            # painless folds the minus into the constant, so -2147483648 is an int
            number = self.int_literal(operand_node, negative=True)
            return lambda frame: number
        operand, pos = self.expr(operand_node), position(node)
        if str(operator) == "-":
            return lambda frame: values.negate(operand(frame), pos)
        return lambda frame: values.multiply(operand(frame), 1, pos)

    def _cast(self, node: Tree[Token]) -> Expr:
        type_node, operand_node = node.children
        assert isinstance(type_node, Tree)
        _, _, cast = self.cast_of(type_node, explicit=True)
        operand, pos = self.expr(operand_node), position(node)
        if cast is None:
            return operand
        return lambda frame: cast(operand(frame), pos)


def _is_null(node: Node) -> bool:
    return isinstance(node, Tree) and node.data == "null"


def _walk_variable(slot: int, steps: tuple[tuple[str, Pos], ...]) -> Expr:
    """A chain from a variable: dict.get chained in one expression, and the full rules
    (null, arrays, other values) only when a link is no map: no non-map value has a
    ``get`` attribute, and reading a variable has no side effect to repeat."""
    full = _walk(lambda frame: frame[slot], steps)
    keys = tuple(key for key, _ in steps)
    if len(keys) == 1:
        (k1,) = keys

        def read_1(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1)
            except AttributeError:
                return full(frame)

        return read_1
    if len(keys) == 2:
        k1, k2 = keys

        def read_2(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2)
            except AttributeError:
                return full(frame)

        return read_2
    if len(keys) == 3:
        k1, k2, k3 = keys

        def read_3(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2).get(k3)
            except AttributeError:
                return full(frame)

        return read_3
    if len(keys) == 4:
        k1, k2, k3, k4 = keys

        def read_4(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2).get(k3).get(k4)
            except AttributeError:
                return full(frame)

        return read_4
    return full


def _walk(base: Expr, steps: tuple[tuple[str, Pos], ...]) -> Expr:
    if len(steps) == 1:
        (key, pos), = steps

        def read_one(frame: Frame) -> Any:
            value = base(frame)
            if type(value) is dict:
                return value.get(key)
            return get_field(value, key, pos)

        return read_one

    def read(frame: Frame) -> Any:
        value = base(frame)
        for key, pos in steps:
            value = value.get(key) if type(value) is dict else get_field(value, key, pos)
        return value

    return read


def is_statement_expression(node: Node) -> bool:
    """Java allows only assignments, calls and object creation as statements."""
    return isinstance(node, Tree) and node.data in ("assign", "call", "safe_call",
                                                    "new_object")
