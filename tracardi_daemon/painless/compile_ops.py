"""Closures for painless's operators, member access, method calls and assignment: the
map-field case is inlined (the hot path of every plan script), the rest goes to the full
rules in access.py and values.py."""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from tracardi_daemon.painless import values
from tracardi_daemon.painless.access import get_field, get_index, set_index
from tracardi_daemon.painless.calls import compile_call
from tracardi_daemon.painless.chains import (
    Expr,
    Frame,
    chain,
    field_store,
    variable_chain,
    variable_field_store,
)
from tracardi_daemon.painless.compile_expr import (
    _BINARY,
    _EQUALITY,
    IDENTITY_OPERATORS,
    ExpressionCompiler,
    Node,
    position,
    token_of,
)
from tracardi_daemon.painless.methods import KNOWN_METHODS, resolve
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
            return variable_chain(slot, tuple(steps))
        return chain(self.expr(base), tuple(steps))

    def variable_rooted(self, node: Node) -> tuple[int, tuple[str, ...]] | None:
        """(slot, keys) of a variable or a chain of fields from one, else None."""
        keys: list[str] = []
        while isinstance(node, Tree) and node.data == "field":
            keys.append(str(token_of(node.children[1])))
            node = node.children[0]
        if not (isinstance(node, Tree) and node.data == "var"):
            return None
        return self.scope.lookup(token_of(node)).slot, tuple(reversed(keys))

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
        receiver = self.expr(target)
        makes = tuple(self.make_of(child) for child in args_node.children) if isinstance(
            args_node, Tree) else ()
        return compile_call(name, receiver, args, makes, methods=methods,
                            pos=position(name_node), null_safe=null_safe)

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
            pos, make = position(target.children[1]), self.make_of(node.children[1])
            rooted = self.variable_rooted(target.children[0])
            if rooted is not None:
                return variable_field_store(*rooted, owner, key=key, pos=pos, value=value,
                                            make=make)
            return field_store(owner, key, pos, value, make)
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

        accepted = variable.accepted

        def assign_cast(frame: Frame) -> Any:
            result = value(frame)
            if type(result) is not accepted:
                result = cast(result, pos)
            frame[slot] = result
            return result

        return assign_cast

    def _elvis(self, node: Tree[Token]) -> Expr:
        left, right = self.expr(node.children[0]), self.expr(node.children[1])

        def elvis(frame: Frame) -> Any:
            result = left(frame)
            return right(frame) if result is None else result

        return elvis

    def condition(self, node: Node, pos: Pos | None = None) -> Expr:
        """An expression used as a boolean: as_boolean applied only where the expression
        may give something else (comparisons, ``&&``, ``||`` and ``!`` give booleans)."""
        expression = self.expr(node)
        if _gives_boolean(node):
            return expression
        where = pos or position(node)
        return lambda frame: as_boolean(expression(frame), where)

    def null_test(self, node: Node) -> tuple[Expr, bool] | None:
        """(operand, whether the test is ``== null``) of ``x == null`` or ``x != null``,
        for the caller to inline; None for every other expression."""
        if not (isinstance(node, Tree) and node.data == "binary"):
            return None
        left_node, operator, right_node = node.children
        if str(operator) not in ("==", "!=") or not _is_null(right_node) or _is_null(
                left_node):
            return None
        return self.expr(left_node), str(operator) == "=="

    def _ternary(self, node: Tree[Token]) -> Expr:
        test = self.condition(node.children[0], position(node))
        yes, no = self.expr(node.children[1]), self.expr(node.children[2])
        return lambda frame: yes(frame) if test(frame) else no(frame)

    def _or_op(self, node: Tree[Token]) -> Expr:
        left, right = self.condition(node.children[0]), self.condition(node.children[1])
        return lambda frame: left(frame) or right(frame)

    def _and_op(self, node: Tree[Token]) -> Expr:
        first_test, second_test = (self.null_test(node.children[0]),
                                   self.null_test(node.children[1]))
        if first_test is not None and second_test is not None:
            # `a != null && a.b != null`, the guard of most plan scripts, in one closure
            (first, first_null), (second, second_null) = first_test, second_test
            return lambda frame: ((first(frame) is None) is first_null
                                  and (second(frame) is None) is second_null)
        left, right = self.condition(node.children[0]), self.condition(node.children[1])
        return lambda frame: left(frame) and right(frame)

    def _binary(self, node: Tree[Token]) -> Expr:
        null_test = self.null_test(node)
        if null_test is not None:
            operand, is_null = null_test
            if is_null:
                return lambda frame: operand(frame) is None
            return lambda frame: operand(frame) is not None
        left_node, operator, right_node = node.children
        left, right, op = self.expr(left_node), self.expr(right_node), str(operator)
        if op in IDENTITY_OPERATORS:
            self.refuse(operator, f"'{op}'", "is not supported (it compares Java "
                                             "references; use == or !=)")
        if op in ("==", "!=") and _is_null(left_node) and _is_null(right_node):
            self.refuse(node, "a comparison of two nulls", "is refused by painless "
                                                           "(extraneous comparison)")
        if op in _EQUALITY:
            test = _EQUALITY[op]
            return lambda frame: test(left(frame), right(frame))
        apply, pos = _BINARY[op], position(operator)
        return lambda frame: apply(left(frame), right(frame), pos)

    def _not_op(self, node: Tree[Token]) -> Expr:
        operand = self.condition(node.children[0], position(node))
        return lambda frame: not operand(frame)

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


def _gives_boolean(node: Node) -> bool:
    if not isinstance(node, Tree):
        return False
    if node.data == "binary":
        return str(node.children[1]) in ("==", "!=", "<", "<=", ">", ">=")
    return node.data in ("and_op", "or_op", "not_op", "true", "false")


def is_statement_expression(node: Node) -> bool:
    """Java allows only assignments, calls and object creation as statements."""
    return isinstance(node, Tree) and node.data in ("assign", "call", "safe_call",
                                                    "new_object")
