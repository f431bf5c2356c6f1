"""The full fault campaign: ``python -m bench.faults --trials N`` runs N trials of each
fault against real daemons, real Redis and real receivers (see tests/faults/harness.py)
and prints one row per fault: lost, duplicated beyond what was in flight at a kill,
early, the worst lateness of the jobs the fault should not touch, health answers, and
recovery after Redis returned. Goal: 0 lost, 0 unexplained duplicates, no stall of
unrelated jobs over 50 ms, recovery within 1 s.

Needs the local services (scripts/services up) and redis-server on PATH."""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import redis

from tests.faults.harness import Fleet, TrialResult, cleanup
from tests.faults.scenarios import (
    corrupt_bodies,
    dead_receiver,
    kill9,
    private_redis,
    redis_restart,
    slow_receiver,
)

Trial = Callable[[], TrialResult]


FAULTS = ("slow", "refused", "black-hole", "corrupted", "kill-9", "redis-restart")


def run_pair_faults(trials: int, rng: random.Random,
                    chosen: list[str]) -> list[list[TrialResult]]:
    client = redis.Redis()
    fleet = Fleet(2)
    fleet.start()
    faults: dict[str, Trial] = {
        "slow": lambda: slow_receiver(fleet, client),
        "refused": lambda: dead_receiver(fleet, client, "refused"),
        "black-hole": lambda: dead_receiver(fleet, client, "black-hole"),
        "corrupted": lambda: corrupt_bodies(fleet, client),
        "kill-9": lambda: kill9(fleet, client, rng),
    }
    try:
        return [[faults[name]() for _ in range(trials)] for name in chosen if name in faults]
    finally:
        fleet.close()
        cleanup(client, fleet.tenant)


def run_redis_restarts(trials: int) -> list[TrialResult]:
    with private_redis() as server:
        fleet = Fleet(1, redis_port=server.port)
        try:
            fleet.start()
            return [redis_restart(fleet, server) for _ in range(trials)]
        finally:
            fleet.close()


def row(results: list[TrialResult]) -> str:
    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    recovery = f"{max(recoveries):.3f}" if recoveries else "-"
    return (f"| {results[0].scenario} | {len(results)} | {sum(r.jobs for r in results)} "
            f"| {sum(r.lost for r in results)} | {sum(r.duplicated for r in results)} "
            f"| {sum(r.resent_in_flight for r in results)} "
            f"| {sum(r.early for r in results)} "
            f"| {max(r.worst_lateness_ms for r in results):.0f} "
            f"| {sum(r.health_200_while_down for r in results)} "
            f"| {sum(r.health_not_ok for r in results)} | {recovery} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="trials of each fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma list of: {', '.join(FAULTS)} (default: all)")
    opts = parser.parse_args()
    chosen = [name.strip() for name in opts.faults.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FAULTS))
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    started = time.monotonic()
    table = run_pair_faults(opts.trials, random.Random(opts.seed), chosen)
    if "redis-restart" in chosen:
        table.append(run_redis_restarts(opts.trials))
    print("| fault | trials | jobs | lost | duplicated (unexplained) | resent in flight "
          "(same key) | early | worst lateness of "
          "unrelated jobs (ms) | health 200 while Redis down | health not 200 "
          "(receiver faults) | recovery after Redis returned, worst (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for results in table:
        print(row(results))
    print(f"\n{opts.trials} trial(s) per fault in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
