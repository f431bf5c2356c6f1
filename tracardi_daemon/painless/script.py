"""A compiled script: the closure tree of its statements, run on one ``_reindex``-style
context per document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracardi_daemon.painless.compile_stmt import StatementCompiler, Stmt
from tracardi_daemon.painless.errors import ScriptFailed, ScriptRefused, Thrown
from tracardi_daemon.painless.parser import parse
from tracardi_daemon.painless.scope import CTX_SLOT, PARAMS_SLOT


class Script:
    """Run with ``script.run(ctx)``; ``ctx`` is ``{"_source": ..., "_id": ..., "_index":
    ..., "op": "index"}`` and the script changes it in place."""

    __slots__ = ("_body", "_frame_size", "_params", "_reads_params", "source", "where")

    def __init__(self, source: str, where: str, params: Mapping[str, Any] | None,
                 body: Stmt, *, frame_size: int, reads_params: bool = True) -> None:
        self.source = source
        self.where = where
        self._params = dict(params) if params is not None else None
        self._body = body
        self._frame_size = frame_size
        self._reads_params = reads_params

    def run(self, ctx: dict[str, Any], params: Mapping[str, Any] | None = None) -> None:
        """ScriptFailed when the script throws on this document (ctx may then be half
        changed, as painless leaves it: the caller drops it)."""
        frame: list[Any] = [None] * self._frame_size
        frame[CTX_SLOT] = ctx
        if self._reads_params:  # a copy: a script may change its params
            chosen = params if params is not None else self._params
            frame[PARAMS_SLOT] = dict(chosen) if chosen is not None else {}
        try:
            self._body(frame)
        except Thrown as thrown:
            raise ScriptFailed(self.where, thrown.line, thrown.column, thrown.exception,
                               thrown.detail) from None

    def __reduce__(self) -> tuple[Any, ...]:
        # closures do not pickle: a process pool compiles the script again
        return (compile_script, (self.source, self.where, self._params))

    def __repr__(self) -> str:
        return f"Script({self.where!r}, {len(self.source)} characters)"


def compile_script(source: str, where: str = "script",
                   params: Mapping[str, Any] | None = None) -> Script:
    """The script compiled once, to be run on many documents; ScriptRefused naming
    ``where``, line, column and construct if it is not in the supported subset."""
    tree = parse(source, where)
    compiler = StatementCompiler(where)
    try:
        body = compiler.statements(tree.children)
    except RecursionError:
        raise ScriptRefused(where, 1, 1, "the script", "is nested too deeply") from None
    return Script(source, where, params, body, frame_size=compiler.scope.size,
                  reads_params=compiler.scope.reads_params)
