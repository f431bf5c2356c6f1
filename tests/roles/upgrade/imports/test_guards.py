"""What an import definition can make the daemon read or contact: files only under
upgrade.import_dirs, regular files only, never the daemon's own files; lines and JSON
nesting bounded before decoding; remote sources only where [outbound] allows, with
one message for a port that is closed, silent or speaks another protocol."""

from __future__ import annotations

import os
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from tests.roles.upgrade.imports.conftest import ImportWorld
from tracardi_daemon.config.settings import (
    LicenseSettings,
    OutboundSettings,
    Settings,
    UpgradeSettings,
)
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.file_access import FileAccess
from tracardi_daemon.roles.upgrade.imports.files import CsvSource, JsonLinesSource

EVENTS = {"target": "events", "event_type": "row-imported", "event_source": "test"}


def _guarded(world: ImportWorld, directory: Path, **upgrade: object) -> ImportWorld:
    """The world with import_dirs = ``directory`` only."""
    settings = replace(world.settings, upgrade=replace(
        world.settings.upgrade, import_dirs=(str(directory),), **upgrade))
    return replace(world, settings=settings)


def test_a_file_outside_import_dirs_fails_the_job_naming_the_setting(
        world: ImportWorld, tmp_path: Path) -> None:
    allowed = tmp_path / "imports"
    allowed.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    (allowed / "link.csv").symlink_to(outside)
    guarded = _guarded(world, allowed)
    for path in (outside, allowed / "link.csv", allowed / ".." / "secret.csv"):
        guarded.define("outside", "csv", path=str(path), **EVENTS)
        record = guarded.run("outside")
        assert record.status == "failed"
        assert "upgrade.import_dirs" in (record.last_error or "") and record.done == 0


def test_fifo_device_and_proc_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer
    with pytest.raises(InvalidInput, match="not a regular file"):
        CsvSource(fifo)
    with pytest.raises(InvalidInput, match="under /dev"):
        CsvSource(Path("/dev/zero"))
    with pytest.raises(InvalidInput, match="under /proc"):
        JsonLinesSource(Path("/proc/self/environ"))


def test_the_daemons_own_licence_and_key_files_are_refused(tmp_path: Path) -> None:
    licence = tmp_path / "license.txt"
    licence.write_text("token\n")
    key = tmp_path / "signing.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n"
                   "-----END PRIVATE KEY-----\n")
    settings = Settings(license=LicenseSettings(file=str(licence)),
                        upgrade=UpgradeSettings(import_dirs=(str(tmp_path),)))
    access = FileAccess.from_settings(settings)
    with pytest.raises(InvalidInput, match="daemon's own"):
        CsvSource(licence, access=access)
    with pytest.raises(InvalidInput, match="private key"):
        CsvSource(key, access=access)


def test_a_50_mb_line_is_one_failed_row_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    with path.open("wb") as out:
        out.write(b"a,b\n1,2\n")
        out.write(b"x" * (50 << 20) + b",y\n")
        out.write(b"3,4\n")
    tracemalloc.start()
    try:
        with CsvSource(path) as source:
            rows = source.read(10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(row.number, row.data) for row in rows if row.failure is None] == [
        (2, {"a": 1, "b": 2}), (4, {"a": 3, "b": 4})]
    [failed] = [row for row in rows if row.failure is not None]
    assert failed.number == 3 and "upgrade.import_max_line_bytes" in failed.failure.reason
    assert len(failed.raw) < 2100
    assert peak < 8 << 20  # a few bounded buffers, not the 50 MB line


def test_a_header_without_end_fails_the_import_at_once(tmp_path: Path) -> None:
    path = tmp_path / "zeros.csv"
    path.write_bytes(b"\0" * (3 << 20))
    access = FileAccess(max_line_bytes=1 << 20)
    with pytest.raises(InvalidInput, match=r"header \(line 1\) is longer than 1048576"):
        CsvSource(path, access=access)


def test_a_json_line_nested_100000_deep_is_a_failed_row(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"b": "[[[["}\n'
                    + '{"c": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with JsonLinesSource(path) as source:
        rows = source.read(10)
    assert [row.data for row in rows if row.failure is None] == [{"a": 1}, {"b": "[[[["}]
    reasons = [row.failure.reason for row in rows if row.failure is not None]
    assert reasons == ["JSON nested deeper than 64 levels"] * 2


def test_an_elasticsearch_source_at_cloud_metadata_is_refused_without_connecting(
        world: ImportWorld) -> None:
    world.define("metadata", "elasticsearch", hosts=["http://169.254.169.254:80"],
                 index="anything", sort_field="id", **EVENTS)
    record = world.run("metadata")
    assert record.status == "failed" and "link-local" in (record.last_error or "")
    assert "outbound.allow" in (record.last_error or "")


def test_a_collector_at_cloud_metadata_is_refused_but_the_configured_api_is_not(
        world: ImportWorld, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n2\n")
    closed = replace(world, settings=replace(world.settings, outbound=OutboundSettings()))
    tracker = {"target": "tracker", "event_type": "t", "event_source": "s", "timeout_s": 2}
    closed.define("metadata", "csv", path=str(rows), api_url="http://169.254.169.254",
                  **tracker)
    record = closed.run("metadata")
    assert record.status == "failed" and record.done == 0
    assert "link-local" in (record.last_error or "")
    assert "outbound.allow" in (record.last_error or "")
    # loopback is closed here too, but tracardi.api_url is the operator's own setting
    own = replace(closed, settings=replace(closed.settings, tracardi=replace(
        closed.settings.tracardi, api_url="http://127.0.0.1:9/")))
    own.define("own", "csv", path=str(rows), api_url="http://127.0.0.1:9", **tracker)
    record = own.run("own")
    assert (record.status, record.done, record.failed) == ("finished", 0, 2)
    assert all(failed.reason.startswith("not sent to the collector")
               for failed in own.failures(record.id))


def test_a_mysql_source_at_a_redis_port_fails_within_its_timeout_and_the_next_runs(
        world: ImportWorld, tmp_path: Path) -> None:
    settings = replace(world.settings, upgrade=replace(
        world.settings.upgrade, source_connect_timeout_s=1.0))
    quick = replace(world, settings=replace(settings, queue=replace(
        settings.queue, max_attempts=1)))
    quick.define("redis-port", "mysql-table", host="127.0.0.1", port=6379, database="x",
                 table="t", **EVENTS)
    record = quick.run("redis-port")
    assert record.status == "failed"
    assert ("could not connect to the source at 127.0.0.1:6379, or it is not a MySQL "
            "server") in (record.last_error or "")
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n2\n")
    quick.define("after", "csv", path=str(rows), **EVENTS)
    assert quick.run("after").status == "finished"
