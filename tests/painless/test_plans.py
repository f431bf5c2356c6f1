"""Every painless script of Tracardi's ten Elasticsearch upgrade plans compiles, and the
ones that read nested maps run on documents of their shape."""

from __future__ import annotations

import pytest

from tests.painless.helpers import plan_scripts, run
from tracardi_daemon.painless import compile_script


def test_the_ten_plans_carry_42_painless_steps_and_every_one_compiles() -> None:
    scripts = plan_scripts()
    assert len(scripts) == 42
    # 082x_to_0820 and 0820_to_09x have none
    assert len({plan for plan, _, _ in scripts}) == 8
    for plan, step, source in scripts:
        compiled = compile_script(source, f"{plan} step {step}")
        assert compiled.source == source


def _script(plan: str, step: int) -> str:
    return next(source for name, number, source in plan_scripts()
                if (name, number) == (plan, step))


def test_the_080_profile_script_moves_pii_under_data() -> None:
    source = _script("080_to_08x.json", 17)
    after = run(source, {"id": "p1", "pii": {"name": "Ann", "surname": "Lee",
                                             "email": "a@b", "twitter": "@a"}})["_source"]
    assert "pii" not in after
    assert after["data"]["pii"] == {"firstname": "Ann", "lastname": "Lee", "name": "Lee"}
    assert after["data"]["contact"]["email"] == "a@b"
    assert after["data"]["contact"]["app"] == {"twitter": "@a", "whatsapp": None}
    assert after["data"]["media"]["social"] == {"facebook": None, "twitter": "@a"}


def test_the_080_profile_script_fails_a_profile_without_pii() -> None:
    from tracardi_daemon.painless import ScriptFailed

    with pytest.raises(ScriptFailed) as caught:
        run(_script("080_to_08x.json", 17), {"id": "p1"})
    assert caught.value.exception == "NullPointerException" and caught.value.line == 12


def test_the_080_session_script_reads_the_browser_only_when_present() -> None:
    source = _script("080_to_08x.json", 24)
    local = {"browser": {"name": "Firefox"}, "device": {"platform": "Linux"}}
    after = run(source, {"context": {"browser": {"local": local}}})["_source"]
    assert after["app"] == {"name": "Firefox"} and after["os"] == {"name": "Linux"}
    bare = run(source, {"id": "s1"})["_source"]
    assert bare == {"id": "s1", "device": {}, "os": {}, "app": {}, "utm": {}}


def test_remove_of_a_dotted_name_removes_that_key_only() -> None:
    source = _script("074_to_080.json", 7)
    after = run(source, {"flags": {}, "operation": {}, "metadata": {"merged_with": "x"},
                         "metadata.merged_with": 1})["_source"]
    assert after == {"metadata": {"merged_with": "x"}}


def test_the_071_script_writes_an_array_as_a_list() -> None:
    after = run(_script("070_to_071.json", 5), {"id": "d"})["_source"]
    assert after == {"id": "d", "type": "rest", "locked": False, "manual": None,
                     "tags": ["rest", "api"]}
