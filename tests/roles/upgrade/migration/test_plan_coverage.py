"""Every one of Tracardi's Elasticsearch upgrade plans runs on the daemon: over an
installation holding each index the plan reads, with the target version installed,
``migrate plan`` lists a source for every step, says how the daemon copies it (painless
interpreted, a 0.7.1 worker, or a plain copy) and refuses nothing."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from tests.roles.upgrade.migration.conftest import install_cli_targets
from tests.roles.upgrade.migration.test_tracardi_plans import (
    PLAN_FILES,
    REFUSED_WORKERS,
    plan_path,
)
from tracardi_daemon.cli import main
from tracardi_daemon.cli.migrate import how_copied
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.migration.plan import Step
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan

RUNNABLE = tuple(name for name in PLAN_FILES if name not in REFUSED_WORKERS)


def _source_indices(es: Elasticsearch, steps: tuple[Step, ...], version: str,
                    tenant: str) -> None:
    """An empty index (a partition, for a partitioned one) for every index the steps read,
    in the mode each step reads."""
    made: set[str] = set()
    for step in steps:
        for production in ((step.production,) if step.production is not None
                           else (False, True)):
            env = "prod-" if production else ""
            static = "static-" if step.static else env
            name = f"{static}{version}.{tenant}.{step.index}" + ("-2024-1" if step.multi else "")
            if name not in made:
                es.indices.create(index=name)
                made.add(name)


@pytest.mark.parametrize("name", RUNNABLE)
def test_migrate_plan_refuses_no_step_of_a_tracardi_plan(
        name: str, es: Elasticsearch, prefix: str, elastic_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = plan_path(name)
    plan = load_plan(path)
    _source_indices(es, plan.steps, plan.source.version, f"{prefix}src")
    install_cli_targets(es, path, f"{prefix}src", prefix)
    env = {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}
    code = main(["migrate", "plan", "--plan", str(path), "--from-tenant", f"{prefix}src"],
                environ=env)
    shown = capsys.readouterr().out
    assert code == 0, shown
    assert "refused" not in shown, shown
    assert "no source index: skipped" not in shown, shown
    for step in plan.steps:
        assert f"step {step.id} ({step.index}" in shown and f"): {how_copied(step)}\n" in shown, (
            step.id)
    painless = sum(1 for step in plan.steps if step.painless)
    assert shown.count("painless, interpreted") == painless


def test_the_plan_tracardi_has_for_09_is_refused_until_copy_to_mysql_runs() -> None:
    with pytest.raises(InvalidInput, match="copy_to_mysql"):
        load_plan(plan_path("0820_to_09x"))
