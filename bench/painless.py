"""Painless interpreted: Tracardi's 0.8.0 -> 0.8.x profile script (pii moved under data)
run by the interpreter beside a hand-written Python function doing the same (the floor:
it has no declarative form), and the 0.8.1 -> 0.8.2 profile script beside declarative
transforms doing about the same (the goal: >= 80 % of their docs/s). One
thread, no Elasticsearch: only the per-document work is timed, each document copied in
advance.

    python -m bench.painless [--documents 200000] [--plans ../shared/reference/tracardi-plans]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracardi_daemon.painless import compile_script
from tracardi_daemon.roles.upgrade.migration.transforms import (
    Move,
    Set,
    Transform,
    apply_in_place,
)

Doc = dict[str, Any]
PLANS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tracardi-plans"
# the 0.8.2 profile script's work as transforms (more lenient than painless on missing
# maps, which these documents do not have): what the migration translated it to once
PROFILE_0820_TRANSFORMS: tuple[Transform, ...] = (
    Move("data.contact.email", "data.contact.email.main"),
    Move("data.contact.phone", "data.contact.phone.main"), Set("data.anonymous", None),
    Move("data.pii.name", "data.pii.display_name"),
    Move("data.devices.names", "data.devices.other"))


def plan_script(plans: Path, plan: str, step: int) -> str:
    steps = json.loads((plans / plan).read_text(encoding="utf-8"))
    return str(steps[step]["copy_index"]["script"])


def profile_080(rng: random.Random, number: int) -> Doc:
    pii = {"name": f"Ann{number}", "surname": "Lee", "email": f"u{number}@example.com"}
    if rng.random() < 0.5:
        pii["twitter"] = f"@u{number}"
    return {"id": f"p{number}", "metadata": {"time": {"insert": "2023-01-01T00:00:00"}},
            "traits": {"orders": rng.randrange(9)}, "pii": pii, "segments": ["a"]}


def profile_081(rng: random.Random, number: int) -> Doc:
    contact = {"email": f"u{number}@example.com", "phone": str(rng.randrange(10**6))}
    return {"id": f"p{number}", "metadata": {"time": {"insert": "2023-01-01T00:00:00"}},
            "traits": {"orders": rng.randrange(9)},
            "data": {"contact": contact, "pii": {"name": f"Ann{number}", "firstname": "Ann"},
                     "devices": {"names": ["phone"]}, "anonymous": False}}


def by_hand_080(source: Doc) -> Doc:
    """What the 0.8.0 profile script does, written in Python (painless's aliasing and its
    NullPointerException on a missing pii kept)."""
    pii = source["pii"]
    if pii is None:
        raise ValueError("NullPointerException")
    row = dict(source)
    app: Doc = {}
    social: Doc = {}
    row["data"] = {
        "contact": {"app": app, "address": {}, "email": pii.get("email")},
        "pii": {"firstname": pii.get("name"), "lastname": pii.get("surname"),
                "name": pii.get("surname")},
        "devices": {}, "media": {"social": social}, "identifier": {}, "loyalty": {}}
    social["facebook"] = pii.get("facebook")
    app["twitter"] = social["twitter"] = pii.get("twitter")
    app["whatsapp"] = pii.get("whatsapp")
    del row["pii"]
    return dict(row)


def rate(docs: list[Doc], apply: Callable[[Doc], object]) -> float:
    started = time.perf_counter()
    for doc in docs:
        apply(doc)
    return len(docs) / (time.perf_counter() - started)


def interpreted(source: str) -> Callable[[Doc], object]:
    script = compile_script(source, "bench")

    def apply(doc: Doc) -> object:
        ctx = {"_source": doc, "_id": doc["id"], "_index": "bench", "op": "index"}
        script.run(ctx)
        return ctx["_source"]

    return apply


def best_of(runs: int, make: Callable[[], list[Doc]], apply: Callable[[Doc], object]) -> float:
    return max(rate(make(), apply) for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--plans", type=Path, default=PLANS)
    opts = parser.parse_args(argv)
    rng = random.Random(7)
    old = [profile_080(rng, n) for n in range(opts.documents)]
    new = [profile_081(rng, n) for n in range(opts.documents)]
    script_080 = plan_script(opts.plans, "080_to_08x.json", 17)
    script_0820 = plan_script(opts.plans, "08x_to_0820.json", 32)
    transforms = PROFILE_0820_TRANSFORMS
    rows = [
        ("0.8.0 profile: hand-written Python (floor)",
         best_of(opts.runs, lambda: copy.deepcopy(old), by_hand_080)),
        ("0.8.0 profile: painless interpreted",
         best_of(opts.runs, lambda: copy.deepcopy(old), interpreted(script_080))),
        ("0.8.2 profile: declarative transforms",
         best_of(opts.runs, lambda: copy.deepcopy(new),
                 lambda doc: apply_in_place(doc, transforms))),
        ("0.8.2 profile: painless interpreted",
         best_of(opts.runs, lambda: copy.deepcopy(new), interpreted(script_0820))),
    ]
    print(f"{opts.documents:,} profiles, best of {opts.runs} runs, one thread")
    print(f"{'path':<46}{'docs/s':>12}{'ratio':>8}")
    for number, (label, docs_per_s) in enumerate(rows):
        base = rows[number - number % 2][1]
        print(f"{label:<46}{docs_per_s:>12,.0f}{docs_per_s / base:>8.2f}")
    print("(ratio: against the row above it in its pair; the goal is the last >= 0.80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
