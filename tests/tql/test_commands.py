"""``tql check``: OK and the query on stdout (exit 0), or the error on stderr (exit 2)."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from tracardi_daemon.cli.tql import add_commands, check_condition


def _run(text: str, typed: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_condition(text, typed=typed, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_valid_condition_prints_ok_and_the_query() -> None:
    code, out, err = _run('profile@traits.age > 18 AND profile@segments == "vip"')
    assert code == 0 and err == ""
    first, _, rest = out.partition("\n")
    assert first == "OK"
    assert json.loads(rest) == {"bool": {"filter": [
        {"range": {"traits.age": {"gt": 18.0}}},
        {"term": {"segments": {"value": "vip"}}},
    ]}}
    assert '\n  "bool"' in rest  # indented


def test_syntax_error_exits_2_with_position_and_pointer() -> None:
    code, out, err = _run("profile@traits.age >")
    assert code == 2 and out == ""
    assert err.startswith("syntax error: line 1, column 21: unexpected end of the condition")
    assert err.endswith("profile@traits.age >\n                    ^\n")


def test_type_error_against_the_daemon_mapping_exits_2() -> None:
    code, _, err = _run("profile@metadata.time.insert > 5")
    assert code == 2
    assert "5 is not a date" in err


def test_unknown_function_exits_2() -> None:
    code, _, err = _run("profile@a == later()")
    assert code == 2
    assert "unknown function later()" in err


def test_untyped_check_takes_types_from_values() -> None:
    code, out, _ = _run("profile@metadata.time.insert > 5", typed=False)
    assert code == 0
    assert json.loads(out.partition("\n")[2]) == {
        "range": {"metadata.time.insert": {"gt": 5.0}}}


def test_the_source_follows_the_condition() -> None:
    code, out, _ = _run('event@type == "purchase"')
    assert code == 0
    assert json.loads(out.partition("\n")[2]) == {"term": {"type": {"value": "purchase"}}}


def test_conditions_for_python_only_are_valid_without_a_query() -> None:
    code, out, _ = _run("profile@traits.a == profile@traits.b")
    assert code == 0
    assert out.startswith("OK\nno Elasticsearch query: comparing profile@traits.a with "
                          "profile@traits.b needs a script")
    code, out, _ = _run('payload@x == 1 AND profile@traits.a == "b"')
    assert code == 0 and "no Elasticsearch query" in out


def test_registered_as_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tql", "check", "--source", "profile", "profile@traits.a EXISTS"])
    assert args.handler(args, {}) == 0
    assert capsys.readouterr().out == 'OK\n{\n  "exists": {\n    "field": "traits.a"\n  }\n}\n'


def test_fields_outside_the_mapping_are_refused() -> None:
    code, _, err = _run("profile@nowhere EXISTS")
    assert code == 2
    assert "profile@nowhere cannot be searched: it is not in the mapping" in err
