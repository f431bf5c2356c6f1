"""``tracardi-daemon segmentation status|run|check|plan`` against the real services."""

from __future__ import annotations

import pytest

from tests.conftest import RoleStarter
from tests.roles.mapping.conftest import World
from tests.roles.segmentation.conftest import step_until_idle
from tracardi_daemon.cli import main
from tracardi_daemon.roles.segmentation.role import SegmentationRole

VIP = {"id": "vip", "name": "VIP", "condition": "profile@traits.orders > 3"}
ODD = {"id": "odd", "name": "Odd", "condition": "profile@traits.a > profile@traits.b"}


@pytest.fixture
def env(segmentation_world: World, elastic_url: str) -> dict[str, str]:
    return {"TENANT_NAME": segmentation_world.settings.tracardi.tenant,
            "ELASTIC_HOST": elastic_url}


def test_plan_names_the_path_and_why(segmentation_world: World, env: dict[str, str],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    segmentation_world.define(segment=[VIP, ODD])
    assert main(["segmentation", "plan", "vip"], environ=env) == 0
    shown = capsys.readouterr().out
    assert "path: elasticsearch" in shown and "add: {'bool'" in shown
    assert main(["segmentation", "plan", "odd"], environ=env) == 0
    assert "path: python: the Elasticsearch compiler refuses it" in capsys.readouterr().out
    assert main(["segmentation", "plan", "nope"], environ=env) == 2


def test_run_a_pass_then_status_and_check(
        segmentation_world: World, env: dict[str, str], start_role: RoleStarter,
        capsys: pytest.CaptureFixture[str]) -> None:
    world = segmentation_world
    world.define(segment=[VIP])
    world.add_profile("p1", traits={"orders": 5})
    world.add_profile("p2", traits={"orders": 1})
    assert main(["segmentation", "run", "vip"], environ=env) == 0
    assert "queued pass" in capsys.readouterr().out
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    assert world.profile("p1")["segments"] == ["vip"]
    world.es.indices.refresh(index=f"*{world.settings.tracardi.tenant}.tracardi-profile*")
    assert main(["segmentation", "status"], environ=env) == 0
    status = capsys.readouterr().out
    assert "vip" in status and "elasticsearch" in status and "finished" in status
    assert " 1 " in status  # one profile in the segment
    world.es.update(index=world.es.search(
        index=f"*{world.settings.tracardi.tenant}.tracardi-profile*",
        query={"ids": {"values": ["p2"]}})["hits"]["hits"][0]["_index"], id="p2",
        doc={"traits": {"orders": 8}}, refresh=True)
    assert main(["segmentation", "check", "p1", "p2", "--dry-run"], environ=env) == 0
    checked = capsys.readouterr().out
    assert "p1: add -; remove -" in checked and "p2: add vip; remove -" in checked
    assert "queued" not in checked
    assert main(["segmentation", "check", "p2", "missing"], environ=env) == 1
    assert "missing: no such profile" in capsys.readouterr().out
    step_until_idle(role, ctx)
    assert world.profile("p2")["segments"] == ["vip"]
