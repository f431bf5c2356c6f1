"""Variables of a script resolved when it is compiled: each declaration gets its own slot
in the frame, so a running script reads a variable by index, never by name."""

from __future__ import annotations

from dataclasses import dataclass

from lark import Token

from tracardi_daemon.painless.access import Cast
from tracardi_daemon.painless.errors import ScriptRefused

CTX_SLOT, PARAMS_SLOT = 0, 1


@dataclass(frozen=True)
class Variable:
    slot: int
    cast: Cast | None
    read_only: bool = False
    accepted: type | None = None  # values of this type pass the cast unchanged


class Scope:
    """Nested blocks' variables; like Java, a name declared in an enclosing block may not
    be declared again inside it."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.size = 2
        self.reads_params = False  # else a run need not copy the params for the script
        self._blocks: list[dict[str, Variable]] = [
            {"ctx": Variable(CTX_SLOT, None, True), "params": Variable(PARAMS_SLOT, None, True)}]

    def enter(self) -> None:
        self._blocks.append({})

    def leave(self) -> None:
        self._blocks.pop()

    def declare(self, name: Token, cast: Cast | None,
                accepted: type | None = None) -> Variable:
        if any(name in block for block in self._blocks):
            raise ScriptRefused(self.where, name.line or 1, name.column or 1,
                                f"variable '{name}'", "is already defined")
        variable = Variable(self.size, cast, accepted=accepted)
        self.size += 1
        self._blocks[-1][str(name)] = variable
        return variable

    def lookup(self, name: Token | str) -> Variable:
        if name == "params":
            self.reads_params = True
        for block in reversed(self._blocks):
            if name in block:
                return block[name]
        line, column = ((name.line or 1, name.column or 1) if isinstance(name, Token)
                        else (1, 1))
        raise ScriptRefused(self.where, line, column, f"variable '{name}'", "is not defined")
