"""The Elasticsearch fault campaign: ``python -m bench.elastic_faults --trials N`` runs N
trials of each fault (a hang of 3.5 times the lease; kill -9 and a restart on the same
data) for each Elasticsearch-bound role, at a random moment of its work, with a real
daemon on the private node (see tests/faults/elastic_trial.py), and prints one row per
(role, fault): lost, doubled, jobs left owned by no one, tasks not ending exact, roles
failed, and the worst time from the node's return to the work moving again. Goal: all
zero.

Needs the local services (scripts/services up); starts the private node itself."""

from __future__ import annotations

import argparse
import random
import sys
import time

from redis import Redis

from tests.faults.elastic_node import private_elastic
from tests.faults.elastic_trial import FAULTS, WORKS, ElasticTrial, run_trial

ROLES = tuple(WORKS)


def _chosen(parser: argparse.ArgumentParser, given: str, known: tuple[str, ...],
            what: str) -> list[str]:
    chosen = [name.strip() for name in given.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def _trials(role: str, fault: str, trials: int, rng: random.Random) -> list[ElasticTrial]:
    results = []
    with private_elastic() as node:
        client = Redis()
        for number in range(trials):
            moment = rng.uniform(0.1, 0.7)
            try:
                trial = run_trial(node, client, role, fault, moment)
            except Exception as exc:  # a trial that broke is reported, never hidden
                trial = ElasticTrial(role, fault, unfinished=f"{type(exc).__name__}: {exc}")
            results.append(trial)
            print(f"{role} {fault} #{number + 1} at {moment:.0%}: "
                  f"{'clean' if trial.clean else trial}", file=sys.stderr, flush=True)
        client.close()
    return results


def row(results: list[ElasticTrial]) -> str:
    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    recovery = f"{max(recoveries):.2f}" if recoveries else "-"
    return (f"| {results[0].role} | {results[0].fault} | {len(results)} "
            f"| {sum(r.lost for r in results)} | {sum(r.doubled for r in results)} "
            f"| {sum(r.unowned for r in results)} | {sum(r.inexact for r in results)} "
            f"| {sum(r.roles_failed for r in results)} "
            f"| {sum(bool(r.unfinished) for r in results)} "
            f"| {sum(r.missed for r in results)} | {recovery} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="trials of each fault and role")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--roles", default=",".join(ROLES),
                        help=f"comma list of: {', '.join(ROLES)} (default: all)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma list of: {', '.join(FAULTS)} (default: all)")
    opts = parser.parse_args()
    roles = _chosen(parser, opts.roles, ROLES, "role")
    faults = _chosen(parser, opts.faults, FAULTS, "fault")
    rng = random.Random(opts.seed)
    started = time.monotonic()
    print("| role | fault | trials | lost | doubled | jobs left unowned | tasks not exact "
          "| roles failed | not finished | missed (done before the fault) "
          "| recovery after Elasticsearch returned, worst (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for role in roles:
        for fault in faults:
            # each row as soon as it is complete: a long run stopped early keeps them
            if results := _trials(role, fault, opts.trials, rng):
                print(row(results), flush=True)
    print(f"\n{opts.trials} trial(s) per row in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
