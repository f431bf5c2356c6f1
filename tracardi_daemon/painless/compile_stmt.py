"""Parse tree of a script's statements to closures: blocks, declarations, if/else,
try/catch and for-each over a list; each statement closure runs on the frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Token, Tree

from tracardi_daemon.painless.access import default_of
from tracardi_daemon.painless.compile_expr import Frame, Node, position
from tracardi_daemon.painless.compile_ops import OperatorCompiler, is_statement_expression
from tracardi_daemon.painless.errors import EXCEPTION_PARENTS, Thrown, is_a
from tracardi_daemon.painless.values import as_boolean, class_name, throw

Stmt = Callable[[Frame], None]


def sequence(statements: tuple[Stmt, ...]) -> Stmt:
    if len(statements) == 1:
        return statements[0]

    def run(frame: Frame) -> None:
        for statement in statements:
            statement(frame)

    return run


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
            value = self.expr(init[0]) if init else (lambda frame, default=default: default)
            assert isinstance(variable_name, Token)
            slot, pos = self.scope.declare(variable_name, cast).slot, position(declarator)
            steps.append(_store(slot, value, cast, pos))
        return sequence(tuple(steps))

    def _if_only(self, node: Tree[Token]) -> Stmt:
        test, body = self.expr(node.children[0]), self._branch(node.children[1])
        pos = position(node.children[0])

        def run_if(frame: Frame) -> None:
            value = test(frame)
            if value is True or (value is not False and as_boolean(value, pos)):
                body(frame)

        return run_if

    def _if_else(self, node: Tree[Token]) -> Stmt:
        test, pos = self.expr(node.children[0]), position(node.children[0])
        yes, no = self._branch(node.children[1]), self._branch(node.children[2])

        def run_if_else(frame: Frame) -> None:
            if as_boolean(test(frame), pos):
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


def _store(slot: int, value: Callable[[Frame], Any], cast: Any, pos: tuple[int, int]) -> Stmt:
    if cast is None:
        def store(frame: Frame) -> None:
            frame[slot] = value(frame)

        return store

    def store_cast(frame: Frame) -> None:
        frame[slot] = cast(value(frame), pos)

    return store_cast


