"""How large a condition may be: refused before lark or any recursive walk sees it, so
that no input can exhaust the stack (the tree, type checker and both back ends recurse).

Conditions people write are a few lines long; these bounds are far above any real one
and far below what would hurt. ``MAX_DEPTH`` also keeps the compiled query under
Elasticsearch's ``indices.query.bool.max_nested_depth`` (30 by default).
"""

from __future__ import annotations

import re

from lark import Token, Tree

from tracardi_daemon.tql.errors import TqlError

MAX_CONDITION_CHARS = 10_000
# nesting of parentheses, NOT, lists and function calls
MAX_DEPTH = 16
# comparisons, EXISTS, BETWEEN, ... in one condition
MAX_TERMS = 256
# a field such as profile@traits.email, as written
MAX_FIELD_CHARS = 256
# a string literal, after its escapes are read
MAX_STRING_CHARS = 1_000
# how much of a bad value a message quotes
QUOTE_CHARS = 40

# a quoted string (skipped: its brackets are text) or one bracket
_BRACKETS = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[()\[\]]""")
_NOT = re.compile(r"(?i)\bnot\b")
# the grammar's rules that nest (each adds a level to evaluation and to the query) and
# the ones that are one term each
_NESTING = frozenset({"or_test", "and_test", "negation", "array", "call"})
_TERMS = frozenset({"compare", "between", "is_null", "is_not_null", "exists", "not_exists",
                    "empty", "not_empty", "contains", "starts_with", "ends_with"})


def short(value: object) -> str:
    """``repr(value)``, of a string only its first QUOTE_CHARS characters, so that a
    message about a huge value stays one line."""
    if isinstance(value, str):
        if len(value) <= QUOTE_CHARS:
            return repr(value)
        return f"{value[:QUOTE_CHARS]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def prefix(text: str) -> str:
    """``text`` unquoted, cut to its first QUOTE_CHARS characters."""
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def check_text(text: str) -> None:
    """Refuse a condition too long or nested too deep, before it is parsed. The bracket
    depth is counted here because lark drops redundant parentheses from the tree."""
    if len(text) > MAX_CONDITION_CHARS:
        raise TqlError(f"the condition has {len(text):,} characters, more than the "
                       f"{MAX_CONDITION_CHARS:,} allowed")
    depth = 0
    for match in _BRACKETS.finditer(text):
        found = match.group(0)
        if found in "([":
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(text, match.start())
        elif found in ")]":
            depth -= 1


def check_tree(tree: Tree[Token], text: str) -> None:
    """Refuse a parsed tree nested deeper than MAX_DEPTH (NOT NOT ... counts here) or
    with more than MAX_TERMS conditions; walked without recursion."""
    terms = 0
    stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in _NESTING:
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(text, None)
        elif node.data in _TERMS:
            terms += 1
            if terms > MAX_TERMS:
                raise TqlError(f"the condition has more than {MAX_TERMS} terms "
                               "(comparisons, EXISTS, BETWEEN, ...)")
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))


def _too_deep(text: str, position: int | None) -> TqlError:
    where = "" if position is None else f" at character {position + 1}"
    nots = len(_NOT.findall(text))
    hint = f" ({nots:,} NOTs)" if nots > MAX_DEPTH else ""
    return TqlError(f"the condition is nested more than {MAX_DEPTH} levels deep{where}"
                    f"{hint}")
