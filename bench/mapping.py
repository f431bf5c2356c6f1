"""Post-collection mapping: the daemon's batch job and live tail beside (a) the floor of
Elasticsearch's own work — the same final profile documents written by plain
``elasticsearch.helpers.streaming_bulk`` — and (b) the naive loop of Tracardi's
prototype (per event: load the profile, apply, save), in one run on the same cluster.

The daemon runs as a real ``tracardi-daemon run`` process (its RSS is sampled from
/proc). Events belong to random profiles and arrive interleaved in time, as a
collector writes them; profiles and events span several partitions. Three definitions:
identify (equals, equals_if_not_exists), page-view (increment, append) and purchase
(with a TQL condition; increment, equals). The naive loop is timed on a sample
(``--naive-events``) and its rate extrapolated: at its speed the whole set takes minutes.

    python -m bench.mapping [--events 200000] [--profiles 20000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan as es_scan
from elasticsearch.helpers import streaming_bulk

from tracardi_daemon import license as lic
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.health.server import HealthUnavailable, fetch
from tracardi_daemon.infra.elastic import create_elastic
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.infra.redis import create_redis
from tracardi_daemon.infra.scan import Scan
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Definition, EventToProfile, definition_type
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name, index_name
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.mapping.rules import MappingRules

GOAL_SHARE_OF_FLOOR = 0.7
GOAL_TIMES_NAIVE = 20
ELASTIC = "http://127.0.0.1:9200"
DEFINITIONS: dict[str, list[dict[str, Any]]] = {"event_to_profile": [
    {"id": "identify", "name": "Identify", "event_type": {"id": "identify"},
     "items": [{"event": "properties.email", "op": "equals",
                "profile": "data.contact.email.main"},
               {"event": "properties.name", "op": "equals_if_not_exists",
                "profile": "data.pii.firstname"}]},
    {"id": "page-view", "name": "Page views", "event_type": {"id": "page-view"},
     "items": [{"op": "increment", "profile": "stats.views"},
               {"event": "properties.category", "op": "append",
                "profile": "traits.categories"}]},
    {"id": "purchase", "name": "Purchases", "event_type": {"id": "purchase"},
     "condition": "event@properties.value > 10",
     "items": [{"op": "increment", "profile": "stats.orders"},
               {"event": "properties.value", "op": "equals",
                "profile": "traits.last_order"}]},
]}
CATEGORIES = ["shoes", "bags", "hats", "coats", "socks", "belts"]


@dataclass(frozen=True)
class Options:
    events: int
    profiles: int
    batch_size: int
    naive_events: int


# ----------------------------------------------------------------- data


def _settings(tenant: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant))


def _seed(es: Elasticsearch, settings: Settings, opts: Options, rng: random.Random) -> None:
    """Profiles over four quarters, events over the last ~200 days (three partitions)."""
    now = datetime.now(UTC)
    partitions = {index_name(settings.tracardi, kind, now - timedelta(days=days))
                  for kind in ("profile", "event") for days in (0, 91, 182, 273)}
    for days in (0, 91, 182, 273):
        install(es, settings, now=now - timedelta(days=days))
    es.indices.put_settings(index=",".join(sorted(partitions)),
                            settings={"index": {"refresh_interval": "-1"}})

    def profiles() -> Iterator[dict[str, Any]]:
        for number in range(opts.profiles):
            created = now - timedelta(days=rng.uniform(0, 365))
            yield {"_index": index_name(settings.tracardi, "profile", created),
                   "_id": f"p{number}", "id": f"p{number}",
                   "metadata": {"time": {"insert": created.isoformat()}}}

    def events() -> Iterator[dict[str, Any]]:
        for number in range(opts.events):
            inserted = now - timedelta(seconds=(opts.events - number) * 80)
            kind = rng.choices(["page-view", "identify", "purchase"], [7, 2, 1])[0]
            props: dict[str, Any] = {
                "page-view": lambda: {"category": rng.choice(CATEGORIES)},
                "identify": lambda: {"email": f"u{rng.randrange(10**6)}@example.com",
                                     "name": rng.choice(["Ann", "Bob", "", None])},
                "purchase": lambda: {"value": rng.randrange(1, 100)},
            }[kind]()
            yield {"_index": index_name(settings.tracardi, "event", inserted),
                   "_id": f"e{number}", "id": f"e{number}", "type": kind,
                   "profile": {"id": f"p{rng.randrange(opts.profiles)}"},
                   "metadata": {"time": {"insert": inserted.isoformat(),
                                         "create": inserted.isoformat()}},
                   "properties": props}

    for actions in (profiles(), events()):
        for ok, item in streaming_bulk(es, actions, chunk_size=5000, raise_on_error=False):
            if not ok:
                raise RuntimeError(f"seeding failed: {item}")
    es.indices.put_settings(index=",".join(sorted(partitions)),
                            settings={"index": {"refresh_interval": "1s"}})
    es.indices.refresh(index=",".join(sorted(partitions)))


def _definitions(es: Elasticsearch, settings: Settings) -> list[Definition]:
    parsed = [definition_type(kind).from_dict(raw) for kind, items in DEFINITIONS.items()
              for raw in items]
    DefinitionStore(es, settings).upsert_many(parsed)
    return parsed


def bench_elastic() -> Elasticsearch:
    """The client the daemon builds from its settings (its JSON serializer included), so
    a baseline pays for the same encoding as the daemon and the ratio measures the
    daemon's own work."""
    return create_elastic(replace(Settings().elastic, hosts=(ELASTIC,), request_timeout_s=120))


def _drop(es: Elasticsearch, tenant: str) -> None:
    found = es.options(ignore_status=404).indices.get(index=f"*{tenant}*",
                                                      expand_wildcards="all")
    if found:
        es.indices.delete(index=",".join(found))
    templates = es.options(ignore_status=404).indices.get_index_template(name=f"*{tenant}*")
    for template in templates.get("index_templates", []):
        es.indices.delete_index_template(name=template["name"])


# ----------------------------------------------------------------- the daemon


class Daemon:
    """A real ``tracardi-daemon run`` process running ``role``, configured by ``sections``
    (TOML after ``[daemon]`` and ``[tracardi]``); ``licensed``: with a licence for the
    role. ``name`` (default: the tenant) names its files, for two daemons of one tenant."""

    def __init__(self, tenant: str, workdir: Path, *, role: str, sections: str,
                 licensed: bool, name: str | None = None) -> None:
        name = name or tenant
        self.role = role
        self.socket = str(workdir / f"{name}.sock")
        config = workdir / f"{name}.toml"
        config.write_text(f"""
[daemon]
roles = ["{role}"]
health_socket = "{self.socket}"
pool_processes = 1
[tracardi]
tenant = "{tenant}"
{sections}""")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TRACARDI_", "LICENSE", "API_LICENSE"))}
        if licensed:
            private, public = lic.generate_keypair(str(workdir / f"keys-{name}"))
            licence = lic.issue(lic.load_private_key(str(private)), "bench", (role,), 1,
                                datetime.now(UTC))
            env.update(LICENSE=licence, TRACARDI_LICENSE_PUBLIC_KEY_FILE=str(public))
        self.log = (workdir / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracardi_daemon.cli", "run", "--config", str(config)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_rss_mb = 0.0
        self.peak_tree_rss_mb = 0.0
        self._sampling = True
        threading.Thread(target=self._sample_rss, daemon=True).start()

    def _sample_rss(self) -> None:
        """``peak_rss_mb``: the daemon's main process; ``peak_tree_rss_mb``: the sum over
        it and every process it started (the process pool's forkserver and workers) —
        an upper bound, pages they share counted once per process."""
        while self._sampling and self.proc.poll() is None:
            main = _rss_mb(self.proc.pid)
            if main is None:
                return  # it exited between poll() and the read
            self.peak_rss_mb = max(self.peak_rss_mb, main)
            tree = main + sum(_rss_mb(pid) or 0.0 for pid in _descendants(self.proc.pid))
            self.peak_tree_rss_mb = max(self.peak_tree_rss_mb, tree)
            time.sleep(0.1)

    def report(self) -> dict[str, Any]:
        _, body = fetch(self.socket, "/health", timeout_s=3.0)
        report: dict[str, Any] = json.loads(body)
        return report

    def wait_running(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.report()["roles"][self.role]["state"] == "running":
                    return
            except (OSError, KeyError, ValueError, HealthUnavailable):
                pass
            time.sleep(0.1)
        raise RuntimeError("the daemon did not start")

    def kill(self) -> None:
        """``kill -9``: no shutdown, nothing handed back."""
        self._sampling = False
        self.proc.kill()
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        self._sampling = False
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.log.close()


def _rss_mb(pid: int) -> float | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    found = [line for line in lines if line.startswith("VmRSS:")]
    return int(found[0].split()[1]) / 1024 if found else 0.0


def _descendants(root: int) -> list[int]:
    """Every live process below ``root``, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _mapping_daemon(tenant: str, live: bool, batch_size: int, workdir: Path) -> Daemon:
    return Daemon(tenant, workdir, role="mapping", licensed=True, sections=f"""[mapping]
live = {str(live).lower()}
live_start = "earliest"
batch_size = {batch_size}
[definitions]
refresh_s = 0.5
""")


# ----------------------------------------------------------------- the paths


def run_job(es: Elasticsearch, tenant: str, opts: Options, workdir: Path) -> tuple[float, float]:
    """The batch job, from submission to finished: (seconds, peak RSS MB)."""
    settings = _settings(tenant)
    definitions = _definitions(es, settings)
    daemon = _mapping_daemon(tenant, live=False, batch_size=opts.batch_size,
                             workdir=workdir)
    try:
        daemon.wait_running()
        redis = create_redis(settings.redis)
        tasks = TaskStore(redis, es, settings)
        started = time.perf_counter()
        record = submit(tasks, WorkQueue(redis, tenant, MAPPING_QUEUE),
                        JobSpec(tuple(definitions)), "bench")
        while (current := tasks.get(record.id)) is not None and not current.terminal:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        assert current is not None and current.status == "finished", current
        if current.failed:
            raise RuntimeError(f"{current.failed} events failed")
        return elapsed, daemon.peak_rss_mb
    finally:
        daemon.stop()


def run_live(es: Elasticsearch, tenant: str, opts: Options, workdir: Path) -> tuple[float, float]:
    """The live tail over the stored events, from the definitions being applied to the
    tail having applied them all: (seconds, peak RSS MB)."""
    settings = _settings(tenant)
    daemon = _mapping_daemon(tenant, live=True, batch_size=opts.batch_size,
                             workdir=workdir)
    try:
        daemon.wait_running()
        started = time.perf_counter()
        _definitions(es, settings)
        while daemon.report()["roles"]["mapping"]["processed"] < opts.events:
            time.sleep(0.05)
            if daemon.proc.poll() is not None:
                raise RuntimeError("the daemon exited")
        return time.perf_counter() - started, daemon.peak_rss_mb
    finally:
        daemon.stop()


def final_profiles(es: Elasticsearch, tenant: str) -> list[dict[str, Any]]:
    settings = _settings(tenant)
    return [{"_index": hit["_index"], "_id": hit["_id"], "_source": hit["_source"]}
            for hit in es_scan(es, index=alias_name(settings.tracardi, "profile"),
                               size=5000)]


def run_floor(es: Elasticsearch, tenant: str, documents: list[dict[str, Any]],
              source_tenant: str) -> float:
    """streaming_bulk of the final profile documents into an empty copy of the indices."""
    settings = _settings(tenant)
    install(es, settings)
    renamed = [{**doc, "_index": doc["_index"].replace(source_tenant, tenant)}
               for doc in documents]
    for index in {doc["_index"] for doc in renamed}:
        es.options(ignore_status=400).indices.create(index=index)  # via the template
    started = time.perf_counter()
    for ok, item in streaming_bulk(es, renamed, chunk_size=1000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"floor write failed: {item}")
    return time.perf_counter() - started


def run_read_floor(es: Elasticsearch, tenant: str) -> float:
    """What any reader of the events pays: a point-in-time scan of all of them, with
    their sources, in batches of 1000 and nothing else."""
    started = time.perf_counter()
    with Scan(es, alias_name(_settings(tenant).tracardi, "event"),
              sort=[{"metadata.time.insert": "asc"}, {"id": "asc"}]) as scan:
        for _batch in scan:
            pass
    return time.perf_counter() - started


def run_naive(es: Elasticsearch, tenant: str, opts: Options) -> float:
    """Tracardi's prototype loop over the first ``naive_events`` events: per event get
    the profile through the alias, apply the definitions, index it back."""
    settings = _settings(tenant)
    definitions = [definition_type(kind).from_dict(raw)
                   for kind, items in DEFINITIONS.items() for raw in items]
    rules = MappingRules([d for d in definitions if isinstance(d, EventToProfile)], [])
    events = [hit for hit in es_scan(
        es, index=alias_name(settings.tracardi, "event"), size=1000,
        query={"query": {"range": {"metadata.time.insert": {"gte": 0}}}})]
    events = events[:opts.naive_events]
    profile_alias = alias_name(settings.tracardi, "profile")
    started = time.perf_counter()
    for hit in events:
        event = hit["_source"]
        found = es.search(index=profile_alias,
                          query={"ids": {"values": [event["profile"]["id"]]}})["hits"]["hits"]
        if not found:
            continue
        profile = found[0]["_source"]
        rules.apply_event(profile, event, None)
        es.index(index=found[0]["_index"], id=found[0]["_id"], document=profile)
    return (time.perf_counter() - started) / max(1, len(events)) * opts.events


# ----------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--naive-events", type=int, default=3000)
    args = parser.parse_args(argv)
    opts = Options(args.events, args.profiles, args.batch_size, args.naive_events)
    es = bench_elastic()
    run_id = uuid.uuid4().hex[:6]
    tenants = {name: f"bench{name}{run_id}" for name in ("job", "live", "floor")}
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-mapping-"))
    try:
        for name in ("job", "live"):
            started = time.perf_counter()
            _seed(es, _settings(tenants[name]), opts, random.Random(7))
            print(f"seeded {name}: {opts.profiles} profiles, {opts.events} events in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
        job_s, job_rss = run_job(es, tenants["job"], opts, workdir)
        print(f"batch job: {job_s:.1f}s", flush=True)
        live_s, live_rss = run_live(es, tenants["live"], opts, workdir)
        print(f"live tail: {live_s:.1f}s", flush=True)
        documents = final_profiles(es, tenants["job"])
        floor_s = run_floor(es, tenants["floor"], documents, tenants["job"])
        read_s = run_read_floor(es, tenants["job"])
        naive_s = run_naive(es, tenants["live"], opts)
        return report(opts, (floor_s, read_s), naive_s, (job_s, job_rss), (live_s, live_rss))
    finally:
        for tenant in tenants.values():
            _drop(es, tenant)
        es.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(opts: Options, floors: tuple[float, float], naive_s: float,
           job: tuple[float, float], live: tuple[float, float]) -> int:
    floor_s, read_s = floors
    rate = {name: opts.events / seconds for name, seconds in
            (("floor", floor_s), ("naive", naive_s), ("job", job[0]), ("live", live[0]),
             ("read", floor_s + read_s))}
    print(f"\n{opts.events:,} events of {opts.profiles:,} profiles, batch "
          f"{opts.batch_size}; events/s (higher is better)")
    print(f"{'path':<44}{'events/s':>12}{'vs floor':>10}{'vs naive':>10}{'peak RSS':>10}")
    rows = [("(a) floor: streaming_bulk of the final profiles", "floor", None),
            ("(a') (a) + a plain scan of the events", "read", None),
            ("(b) naive loop (get, apply, index per event)", "naive", None),
            ("daemon batch job", "job", job[1]), ("daemon live tail", "live", live[1])]
    for label, key, rss in rows:
        print(f"{label:<44}{rate[key]:>12,.0f}{rate[key] / rate['floor']:>10.2f}"
              f"{rate[key] / rate['naive']:>10.1f}"
              f"{(f'{rss:.0f} MB' if rss else '-'):>10}")
    print(f"(the naive loop was timed on {opts.naive_events:,} events and extrapolated; "
          f"vs (a'): job {rate['job'] / rate['read']:.2f}, live {rate['live'] / rate['read']:.2f})")
    met = all(rate[k] >= GOAL_SHARE_OF_FLOOR * rate["floor"]
              and rate[k] >= GOAL_TIMES_NAIVE * rate["naive"] for k in ("job", "live"))
    print(f"goal (>= {GOAL_SHARE_OF_FLOOR:.0%} of the floor and >= {GOAL_TIMES_NAIVE}x "
          f"naive, both modes): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
