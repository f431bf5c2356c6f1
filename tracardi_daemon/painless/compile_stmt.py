"""Parse tree of a script's statements to closures: blocks, declarations, if/else,
try/catch and for-each over a list; each statement closure runs on the frame."""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any

from lark import Token, Tree

from tracardi_daemon.painless.access import accepted_type, default_of
from tracardi_daemon.painless.chains import Frame
from tracardi_daemon.painless.compile_expr import Node, position
from tracardi_daemon.painless.compile_ops import OperatorCompiler, is_statement_expression
from tracardi_daemon.painless.errors import EXCEPTION_PARENTS, Thrown, is_a
from tracardi_daemon.painless.values import class_name, throw

Stmt = Callable[[Frame], None]


def sequence(statements: tuple[Stmt, ...]) -> Stmt:
    """The statements run in order; four at a time unrolled (a loop step per statement
    costs as much as a small statement), longer runs nested."""
    if len(statements) == 1:
        return statements[0]
    if len(statements) > 4:
        return sequence(tuple(sequence(statements[start:start + 4])
                              for start in range(0, len(statements), 4)))
    if len(statements) == 4:
        first, second, third, fourth = statements

        def run_4(frame: Frame) -> None:
            first(frame)
            second(frame)
            third(frame)
            fourth(frame)

        return run_4
    return _sequence_short(statements)


def _sequence_short(statements: tuple[Stmt, ...]) -> Stmt:
    if len(statements) == 3:
        first, second, third = statements

        def run_3(frame: Frame) -> None:
            first(frame)
            second(frame)
            third(frame)

        return run_3
    if len(statements) == 2:
        first, second = statements

        def run_2(frame: Frame) -> None:
            first(frame)
            second(frame)

        return run_2
    return lambda frame: None


class StatementCompiler(OperatorCompiler):
    def statements(self, nodes: list[Node]) -> Stmt:
        compiled = [self.stmt(node) for node in nodes]
        return sequence(tuple(statement for statement in compiled if statement is not None))

    def stmt(self, node: Node) -> Stmt | None:
        if isinstance(node, Tree) and node.data == "empty_stmt":
            return None
        if isinstance(node, Tree) and node.data == "expr_stmt":
            if not is_statement_expression(node.children[0]):
                self.refuse(node, "an expression statement", "is not a statement (only an "
                                  "assignment, a method call or new ... is)")
            expression = self.expr(node.children[0])
            return expression
        if not isinstance(node, Tree) or node.data not in _STATEMENTS:
            self.refuse(node, str(node.data if isinstance(node, Tree) else node),
                        "is not a supported statement")
        statement: Stmt = getattr(self, f"_{node.data}")(node)
        return statement

    def _block(self, node: Tree[Token]) -> Stmt:
        self.scope.enter()
        try:
            return self.statements(node.children)
        finally:
            self.scope.leave()

    def _branch(self, node: Node) -> Stmt:
        """The body of an if, else or for: its own scope even when it is no block."""
        self.scope.enter()
        try:
            return self.stmt(node) or (lambda frame: None)
        finally:
            self.scope.leave()

    def _decl_stmt(self, node: Tree[Token]) -> Stmt:
        decl = node.children[0]
        assert isinstance(decl, Tree)
        type_node, *declarators = decl.children
        assert isinstance(type_node, Tree)
        name, dims, cast = self.cast_of(type_node)
        default = default_of(name, dims)
        steps: list[Stmt] = []
        for declarator in declarators:
            assert isinstance(declarator, Tree)
            variable_name, *init = declarator.children
            pos = position(declarator)
            value = self.expr(init[0]) if init else (lambda frame, default=default: default)
            make = self.make_of(init[0]) if init else repeat(default).__next__
            make = self.folded(make, cast, pos) if make is not None else None
            assert isinstance(variable_name, Token)
            slot = self.scope.declare(variable_name, cast, accepted_type(name, dims)).slot
            steps.append(_store_made(slot, make) if make is not None else
                         _store(slot, value, cast, pos))
        return sequence(tuple(steps))

    def _if_only(self, node: Tree[Token]) -> Stmt:
        null_test = self.null_test(node.children[0])
        if null_test is not None:
            return _if_null(*null_test, self._branch(node.children[1]))
        test, body = self.condition(node.children[0]), self._branch(node.children[1])

        def run_if(frame: Frame) -> None:
            if test(frame):
                body(frame)

        return run_if

    def _if_else(self, node: Tree[Token]) -> Stmt:
        test = self.condition(node.children[0])
        yes, no = self._branch(node.children[1]), self._branch(node.children[2])

        def run_if_else(frame: Frame) -> None:
            if test(frame):
                yes(frame)
            else:
                no(frame)

        return run_if_else

    def _try_stmt(self, node: Tree[Token]) -> Stmt:
        body_node, *clauses = node.children
        body = self.stmt(body_node) or (lambda frame: None)
        catches = tuple(self._catch(clause) for clause in clauses if isinstance(clause, Tree))

        def run_try(frame: Frame) -> None:
            try:
                body(frame)
            except Thrown as thrown:
                for catchable, slot, handler in catches:
                    if is_a(thrown.exception, catchable):
                        frame[slot] = thrown
                        handler(frame)
                        return
                raise

        return run_try

    def _catch(self, clause: Tree[Token]) -> tuple[str, int, Stmt]:
        type_token, name, block = clause.children
        if str(type_token) not in EXCEPTION_PARENTS:
            self.refuse(type_token, f"catch ({type_token} ...)",
                        f"is not supported (catch one of {', '.join(EXCEPTION_PARENTS)})")
        self.scope.enter()
        try:
            assert isinstance(name, Token)
            slot = self.scope.declare(name, None).slot
            return str(type_token), slot, self.stmt(block) or (lambda frame: None)
        finally:
            self.scope.leave()

    def _for_each(self, node: Tree[Token]) -> Stmt:
        type_node, name, iterable_node, body_node = node.children
        assert isinstance(type_node, Tree) and isinstance(name, Token)
        _, _, cast = self.cast_of(type_node)
        iterable, pos = self.expr(iterable_node), position(iterable_node)
        self.scope.enter()
        try:
            slot = self.scope.declare(name, cast).slot
            body = self._branch(body_node)
        finally:
            self.scope.leave()

        def run_for(frame: Frame) -> None:
            items = iterable(frame)
            if not isinstance(items, list):
                if items is None:
                    throw("NullPointerException", "a for loop over null", pos)
                throw("IllegalArgumentException",
                      f"cannot iterate over [{class_name(items)}]", pos)
            # a copy: painless would throw ConcurrentModificationException instead
            for item in list(items):
                frame[slot] = item if cast is None else cast(item, pos)
                body(frame)

        return run_for


_STATEMENTS = ("block", "decl_stmt", "if_only", "if_else", "try_stmt", "for_each")


def _if_null(operand: Callable[[Frame], Any], is_null: bool, body: Stmt) -> Stmt:
    """``if (x == null)`` and ``if (x != null)``, the most common test, in one closure."""
    if is_null:
        def run_if_null(frame: Frame) -> None:
            if operand(frame) is None:
                body(frame)

        return run_if_null

    def run_if_not_null(frame: Frame) -> None:
        if operand(frame) is not None:
            body(frame)

    return run_if_not_null


def _store_made(slot: int, make: Callable[[], Any]) -> Stmt:
    def store_made(frame: Frame) -> None:
        frame[slot] = make()

    return store_made


def _store(slot: int, value: Callable[[Frame], Any], cast: Any, pos: tuple[int, int]) -> Stmt:
    if cast is None:
        def store(frame: Frame) -> None:
            frame[slot] = value(frame)

        return store

    def store_cast(frame: Frame) -> None:
        frame[slot] = cast(value(frame), pos)

    return store_cast


