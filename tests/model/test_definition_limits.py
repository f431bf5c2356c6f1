"""Absurd definition files through ``definitions apply``: each is refused with exit code
1 and a one-line reason naming the file, the definition and the field, quoting at most a
short prefix of the bad value, and nothing is written; no traceback, no RecursionError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.model.definition_limits import MAX_FILE_BYTES, id_problem
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment

from .conftest import CliRunner

MEGABYTE = 1_000_000
# a refusal quotes at most a 40-character prefix: the whole message stays short
MESSAGE_MAX = 600


def segment_toml(ident: str = "s1", condition: str = "profile@traits.a == 1") -> str:
    return (f'[[segment]]\nid = {json.dumps(ident)}\nname = "S"\n'
            f"condition = {json.dumps(condition)}\n")


def refused(run_cli: CliRunner, capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """Apply ``path``, expect exit code 1 and return the error, checked to be short."""
    assert run_cli("definitions", "apply", str(path)) == 1
    err = capsys.readouterr().err
    assert "nothing applied" in err or err.startswith("error:")
    assert str(path) in err or err.startswith("error:")
    assert len(err) < MESSAGE_MAX, err[:MESSAGE_MAX]
    assert "Traceback" not in err
    return err


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_json_nested_100000_deep(run_cli: CliRunner, capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path) -> None:
    deep = '{"segment": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    err = refused(run_cli, capsys, write(tmp_path, "deep.json", deep))
    assert "line 1: nested more than 32 levels deep" in err


def test_toml_nested_10000_deep(run_cli: CliRunner, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:
    arrays = segment_toml() + "tags = " + "[" * 10_000 + "]" * 10_000 + "\n"
    err = refused(run_cli, capsys, write(tmp_path, "arrays.toml", arrays))
    assert "nested more than 32 levels deep" in err
    tables = segment_toml() + "x = " + "{a = " * 10_000 + "1" + "}" * 10_000 + "\n"
    assert "nested more than 32" in refused(run_cli, capsys,
                                            write(tmp_path, "tables.toml", tables))


def test_toml_dotted_keys_deeper_than_the_limit(run_cli: CliRunner,
                                                capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    dotted = segment_toml() + ".".join(["k"] * 10_000) + " = 1\n"
    err = refused(run_cli, capsys, write(tmp_path, "dotted.toml", dotted))
    assert "segment[0].k.k.k" in err
    assert "is nested more than 32 levels deep" in err


def test_invalid_utf8_names_the_byte_and_line(run_cli: CliRunner,
                                              capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    data = segment_toml().encode() + b'description = "caf\xe9"\n'
    err = refused(run_cli, capsys, write(tmp_path, "latin1.toml", data))
    offset = data.index(b"\xe9")
    assert f"is not valid UTF-8 at byte {offset} (line 5, byte 19 of the line)" in err


def test_file_larger_than_the_limit(run_cli: CliRunner, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    big = segment_toml() + "# " + "x" * MAX_FILE_BYTES + "\n"
    assert "is larger than 10 MiB" in refused(run_cli, capsys,
                                              write(tmp_path, "big.toml", big))


@pytest.mark.parametrize(("name", "condition", "reason"), [
    ("10000-nots", "NOT " * 10_000 + "profile@traits.a EXISTS",
     "has 40,023 characters, more than the 10,000 allowed"),
    ("2000-nots", "NOT " * 2_000 + "profile@traits.a EXISTS",
     "nested more than 16 levels deep (2,000 NOTs)"),
    ("10000-parens", "(" * 10_000 + "profile@traits.a EXISTS" + ")" * 10_000,
     "more than the 10,000 allowed"),
    ("3000-parens", "(" * 3_000 + "profile@traits.a EXISTS" + ")" * 3_000,
     "nested more than 16 levels deep at character 17"),
    ("10000-terms", " AND ".join(["profile@traits.a EXISTS"] * 10_000),
     "more than the 10,000 allowed"),
    ("300-terms", " AND ".join(["profile@a EXISTS"] * 300),
     "has more than 256 terms"),
    ("1mb-string", 'profile@traits.a == "' + "x" * MEGABYTE + '"',
     "more than the 10,000 allowed"),
    ("5000-string", 'profile@traits.a == "' + "x" * 5_000 + '"',
     "string 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (5,000 characters) is longer "
     "than 1,000 characters"),
    ("1mb-field", "profile@traits." + "f" * MEGABYTE + " EXISTS",
     "more than the 10,000 allowed"),
    ("5000-field", "profile@traits." + "f" * 5_000 + " EXISTS",
     f"field {'profile@traits.' + 'f' * 25!r}... (5,015 characters) is longer than 256 "
     "characters"),
])
def test_conditions_beyond_the_limits(run_cli: CliRunner, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, name: str, condition: str,
                                      reason: str) -> None:
    err = refused(run_cli, capsys, write(tmp_path, f"{name}.toml",
                                         segment_toml(condition=condition)))
    assert "segment 's1': field 'condition' is not a valid condition" in err
    assert reason in err


@pytest.mark.parametrize(("ident", "reason"), [
    ("vip\nother", "may hold only letters, digits and _ . : - (no space, slash or "
                   "newline), got 'vip\\nother'"),
    ("../../etc/passwd", "may hold only letters"),
    ("..", "must not contain '..', got '..'"),
    ("a b", "may hold only letters"),
    ("x" * MEGABYTE, "must have 1 to 128 characters, "
                     "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (1,000,000 characters) "
                     "has 1,000,000"),
])
def test_ids_outside_the_charset_or_length(es: Elasticsearch, settings: Settings,
                                           run_cli: CliRunner,
                                           capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, ident: str, reason: str) -> None:
    err = refused(run_cli, capsys, write(tmp_path, "ids.toml", segment_toml(ident)))
    assert f"segment: field 'id' {reason}" in err
    assert DefinitionStore(es, settings).list(Segment) == []


def test_ids_of_tracardi_and_of_the_fixtures_pass() -> None:
    for ident in ("2f4a5a7e-56c4-4b8e-9d43-0c8a1cd3a0b1", "page-view", "seg_vip",
                  "tracardi.segment:1", "a", "x" * 128):
        assert id_problem(ident) is None, ident
    assert id_problem("x" * 129) is not None


def test_one_kind_over_max_per_kind_in_one_file(run_cli: CliRunner,
                                                capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    # refused from the count alone: 10,001 conditions are never parsed
    many = "".join(segment_toml(f"s{index}") for index in range(10_001))
    err = refused(run_cli, capsys, write(tmp_path, "many.toml", many))
    assert "segment: 10,001 definitions, more than definitions.max_per_kind (10,000)" in err


def test_stored_and_new_together_over_max_per_kind(es: Elasticsearch, settings: Settings,
                                                   run_cli: CliRunner, cli_env: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    config = write(tmp_path, "daemon.toml", "[definitions]\nmax_per_kind = 4\n")
    first = write(tmp_path, "first.toml", "".join(segment_toml(f"a{i}") for i in range(3)))
    assert run_cli("definitions", "apply", str(first), "--config", str(config)) == 0
    # replacing stored ones counts them once
    again = write(tmp_path, "again.toml", "".join(segment_toml(f"a{i}") for i in range(3))
                  + segment_toml("b0"))
    assert run_cli("definitions", "apply", str(again), "--config", str(config)) == 0
    capsys.readouterr()
    more = write(tmp_path, "more.toml", segment_toml("a0") + segment_toml("c0"))
    assert run_cli("definitions", "apply", str(more), "--config", str(config)) == 1
    err = capsys.readouterr().err
    assert "segment: 4 stored and 1 new would make 5, more than definitions.max_per_kind " \
           "(4)" in err
    stored = [s.id for s in DefinitionStore(es, settings).list(Segment)]
    assert stored == ["a0", "a1", "a2", "b0"]
