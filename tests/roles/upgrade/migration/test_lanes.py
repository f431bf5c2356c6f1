"""Lanes read back from a checkpoint, including one written before lanes existed."""

from __future__ import annotations

from tracardi_daemon.roles.upgrade.migration.lanes import Lane


def test_lanes_round_trip_through_the_checkpoint() -> None:
    lanes = [Lane(0, 0, ["m"], [["a"], None]), Lane(2, 1)]
    checkpoint = {"lanes": [lane.to_dict() for lane in lanes], "next_item": 3}
    restored, next_item = Lane.from_checkpoint(checkpoint, 5)
    assert [lane.to_dict() for lane in restored] == [lane.to_dict() for lane in lanes]
    assert next_item == 3
    assert Lane.from_checkpoint({}, 5) == ([], 0)


def test_a_checkpoint_from_before_lanes_goes_on_from_its_position() -> None:
    restored, next_item = Lane.from_checkpoint(
        {"work": [], "item": 1, "phase": 0, "position": ["p42"], "failed": 0}, 3)
    # one slice (no bounds to split again) at the saved position, then item 2
    assert [lane.to_dict() for lane in restored] == [
        {"item": 1, "phase": 0, "bounds": [], "positions": [["p42"]]}]
    assert next_item == 2
    restored, _ = Lane.from_checkpoint({"item": 1, "phase": 1, "position": None}, 3)
    assert restored[0].to_dict() == {"item": 1, "phase": 1, "bounds": None,
                                     "positions": [None]}
    assert Lane.from_checkpoint({"item": 3, "phase": 0, "position": None}, 3) == ([], 3)
