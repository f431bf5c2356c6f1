"""``tracardi-daemon import run|status|cancel|failures`` and the import definition as
``definitions apply`` reads it, against the real services."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.roles.upgrade.imports.conftest import ImportWorld
from tracardi_daemon.cli import main
from tracardi_daemon.roles.upgrade.role import UpgradeRole

DEFINITIONS = """
[[import]]
id = "contacts"
name = "CRM contacts"
source = "csv"

[import.config]
path = "{path}"
target = "profiles"
key = "email"
match = "data.contact.email.main"
columns = {{ age = "int" }}

[import.config.fields]
email = "data.contact.email.main"
first_name = "data.pii.firstname"
age = "data.pii.age"
"""


@pytest.fixture
def env(world: ImportWorld, elastic_url: str) -> dict[str, str]:
    return {"TENANT_NAME": world.settings.tracardi.tenant, "ELASTIC_HOST": elastic_url}


def test_run_status_and_failures_of_a_csv_import_to_profiles(
        world: ImportWorld, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text("email,first_name,age\nann@example.com,Ann,31\nbob@example.com,Bob,old\n",
                   encoding="utf-8")
    definitions = tmp_path / "imports.toml"
    definitions.write_text(DEFINITIONS.format(path=csv), encoding="utf-8")
    assert main(["definitions", "apply", str(definitions)], environ=env) == 0
    capsys.readouterr()

    assert main(["import", "run", "contacts"], environ=env) == 0
    queued = capsys.readouterr().out
    found = re.search(r"queued import (\w+) \(csv -> profiles\)", queued)
    assert found, queued
    task_id = found.group(1)
    role, ctx = world.start_role(UpgradeRole, world.settings)
    assert world.finish(role, ctx, task_id).status == "finished"

    assert main(["import", "status", task_id], environ=env) == 0
    status = capsys.readouterr()
    assert "1/2 done" in status.out and "1 failed" in status.out and "finished" in status.out
    assert f"import failures {task_id}" in status.out
    assert main(["import", "status"], environ=env) == 0
    assert task_id in capsys.readouterr().out

    assert main(["import", "failures", task_id], environ=env) == 0
    shown = capsys.readouterr().out
    assert "row 3  column age: 'old' is not an int" in shown
    assert "bob@example.com,Bob,old" in shown
    assert "1-1 of 1 failed row(s)" in shown
    assert main(["import", "failures", task_id, "--json"], environ=env) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"row": 3, "column": "age", "reason": "'old' is not an int",
                                "raw": "bob@example.com,Bob,old"}
    assert len(world.documents("profile")) == 1

    assert main(["import", "cancel", task_id], environ=env) == 1  # it ended already
    assert "no running task" in capsys.readouterr().err


def test_run_refuses_an_unknown_or_disabled_definition_before_queueing(
        world: ImportWorld, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "run", "nobody"], environ=env) == 2
    assert "no import definition 'nobody'" in capsys.readouterr().err
    definitions = tmp_path / "off.json"
    definitions.write_text(json.dumps({"import": [{
        "id": "off", "name": "Off", "source": "jsonl", "enabled": False,
        "config": {"path": "/nonexistent.jsonl", "event_type": "x", "event_source": "y"}}]}))
    assert main(["definitions", "apply", str(definitions)], environ=env) == 0
    capsys.readouterr()
    assert main(["import", "run", "off"], environ=env) == 2
    assert "import 'off' is disabled" in capsys.readouterr().err
    assert world.tasks.list("import") == []


def test_definitions_apply_names_the_bad_field_of_an_import(
        world: ImportWorld, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    definitions = tmp_path / "bad.json"
    definitions.write_text(json.dumps({"import": [{
        "id": "bad", "name": "Bad", "source": "csv",
        "config": {"path": "x.csv", "target": "profiles", "key": "email",
                   "fields": {"email": "contact.email"}}}]}))
    assert main(["definitions", "apply", str(definitions)], environ=env) == 1
    assert ("import 'bad': config.fields path 'contact.email' must start with one of data, "
            "traits") in capsys.readouterr().err


def test_tracardi_shaped_imports_are_read_as_tracker_imports(world: ImportWorld) -> None:
    from tracardi_daemon.model.definitions import ImportConfig
    from tracardi_daemon.model.import_spec import read_spec

    definition = ImportConfig.from_dict({
        "id": "i1", "name": "Legacy table", "description": "", "enabled": True,
        "module": "mysql-table-importer", "api_url": "http://tracardi:8686",
        "event_source": {"id": "bridge-1", "name": "Import"}, "event_type": "legacy-row",
        "config": {"source": {"id": "r1", "name": "MySQL"}, "database_name": "shop",
                   "table_name": "orders", "batch": 100}})
    spec = read_spec(definition.id, definition.name, definition.source, definition.config)
    assert (spec.source, spec.target, spec.event_type, spec.event_source, spec.api_url) == (
        "mysql-table", "tracker", "legacy-row", "bridge-1", "http://tracardi:8686")
    assert (spec.config["database"], spec.config["table"], spec.batch) == ("shop", "orders",
                                                                           100)


def test_definitions_show_masks_an_imports_credentials(
        world: ImportWorld, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    definitions = tmp_path / "db.json"
    definitions.write_text(json.dumps({"import": [{
        "id": "db", "name": "Orders", "source": "mysql-table",
        "config": {"host": "db.internal", "user": "reader", "password": "pw-1f9a",
                   "database": "shop", "table": "orders", "event_type": "order",
                   "event_source": "shop-db"}}]}))
    assert main(["definitions", "apply", str(definitions)], environ=env) == 0
    capsys.readouterr()
    assert main(["definitions", "show", "import", "db"], environ=env) == 0
    shown = capsys.readouterr().out
    assert "pw-1f9a" not in shown
    assert json.loads(shown)["config"]["password"] == "********"
    assert json.loads(shown)["config"]["user"] == "reader"


def test_run_records_which_credentials_of_a_tracardi_resource_to_use(
        world: ImportWorld, env: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    definitions = tmp_path / "imports.toml"
    definitions.write_text(DEFINITIONS.format(path=tmp_path / "c.csv"), encoding="utf-8")
    assert main(["definitions", "apply", str(definitions)], environ=env) == 0
    debug = {}
    for option in ("--debug", "--no-debug", None):
        capsys.readouterr()
        assert main(["import", "run", "contacts", *([option] if option else [])],
                    environ=env) == 0
        found = re.search(r"queued import (\w+)", capsys.readouterr().out)
        assert found
        record = world.tasks.get(found.group(1))
        assert record is not None
        debug[option] = record.params.get("debug", "context")
    assert debug == {"--debug": True, "--no-debug": False, None: "context"}
