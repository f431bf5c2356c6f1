"""``tracardi-daemon tql check "<condition>"``: parse, type-check against the daemon's
mapping, and show the Elasticsearch query a condition compiles to."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TextIO

from tracardi_daemon.errors import ExitCode
from tracardi_daemon.tql import ast
from tracardi_daemon.tql.condition import Condition
from tracardi_daemon.tql.errors import TqlError, TqlSyntaxError
from tracardi_daemon.tql.schema import Schema

_INDEXED_SOURCES = ("profile", "event", "session")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("tql", help="work with TQL conditions")
    commands = parser.add_subparsers(dest="tql_command", required=True, metavar="ACTION")
    check = commands.add_parser(
        "check", help="validate a condition and print its Elasticsearch query")
    check.add_argument("condition", help='the condition, e.g. \'profile@traits.age > 18\'')
    check.add_argument("--source", choices=_INDEXED_SOURCES,
                       help="documents the query searches (default: the condition's)")
    check.add_argument("--untyped", action="store_true",
                       help="ignore the index mappings; every field takes the type of "
                            "the value it is compared with")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return check_condition(args.condition, source=args.source, typed=not args.untyped)


def check_condition(text: str, *, source: str | None = None, typed: bool = True,
                    out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print ``OK`` and the query (exit 0) or the error (exit 2)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        condition = Condition(text, _daemon_schema() if typed else None)
    except TqlSyntaxError as exc:
        print(f"syntax error: {exc}\n{exc.pointer()}", file=err)
        return int(ExitCode.CONFIG)
    except TqlError as exc:
        print(f"error: {exc}", file=err)
        return int(ExitCode.CONFIG)
    print("OK", file=out)
    searched = source or _only_source(condition.tree)
    if searched not in _INDEXED_SOURCES:
        print("no Elasticsearch query: the condition reads several documents or payload@; "
              "it can only be evaluated in Python", file=out)
        return int(ExitCode.OK)
    try:
        query = condition.to_elastic(source=searched)
    except TqlError as exc:
        print(f"no Elasticsearch query: {exc}; it can only be evaluated in Python", file=out)
        return int(ExitCode.OK)
    print(json.dumps(query, indent=2, ensure_ascii=False), file=out)
    return int(ExitCode.OK)


def _only_source(tree: ast.Node) -> str | None:
    sources = {field.source for field in ast.fields_of(tree)}
    return sources.pop() if len(sources) == 1 else None


def _daemon_schema() -> Schema:
    # the mappings the daemon installs are what its queries will run against
    from tracardi_daemon.model.mappings import mapping_for

    return Schema({source: mapping_for(source) for source in _INDEXED_SOURCES})
