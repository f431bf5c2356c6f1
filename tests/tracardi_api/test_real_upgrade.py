"""A real upgrade: Tracardi 0.8.1's own API collects profiles with e-mails (staging and
production) through an event-to-profile mapping; ``migrate detach`` takes 0.8.1's aliases
off (0.8.2 uses the same names, and its install skips every index whose alias exists);
Tracardi 0.8.2's own API is installed for the same tenant as Tracardi's procedure says
(its POST /install); the daemon migrates with the shipped 08x plan; 0.8.2 then logs in
with 0.8.1's admin, reports its schema whole and serves every profile and the mapping."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests.e2e.conftest import DaemonProcess, daemon_env, write_config
from tests.fleet import running
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.tenant_api import api_for_tenant

pytestmark = pytest.mark.tracardi_api

# the admin 0.8.1's /install creates; a test installation's account, not a secret
ADMIN, PASSWORD = "admin@upgrade.example.com", "td-upgrade-admin-pw"
CONTEXTS = ("staging", "production")
INSTALL_TIMEOUT_S = 180.0
MIGRATE_TIMEOUT_S = 600.0


@dataclass
class Collected:
    """What 0.8.1 collected: per context, profile id -> e-mail; the mapping's id."""

    source_id: str = field(default_factory=lambda: unique("src"))
    event_type: str = field(default_factory=lambda: unique("signup"))
    mapping_id: str = field(default_factory=lambda: unique("etp"))
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)


def install(url: str) -> httpx.Response:
    return httpx.post(f"{url}/install", timeout=INSTALL_TIMEOUT_S, json={
        "username": ADMIN, "password": PASSWORD, "token": "tracardi", "needs_admin": True,
        "update_mapping": False})


@contextmanager
def logged_in(url: str, version: str) -> Iterator[dict[str, ApiClient]]:
    """The admin's client per context (staging, production)."""
    staging = ApiClient.login(url, ADMIN, PASSWORD, version=version)
    clients = {"staging": staging, "production": staging.production()}
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


def email_of(profile: dict[str, Any]) -> Any:
    contact = (profile.get("data") or {}).get("contact") or {}
    return contact.get("email")


def collect_on_081(url: str, tenant: str) -> Collected:
    """POST /install, then in each context an event source, a mapping of the event's
    e-mail to the profile's, and two tracked profiles; waits until 0.8.1 serves them."""
    answer = install(url)
    assert answer.status_code == 200, (f"0.8.1 POST /install: {answer.status_code} "
                                       f"{answer.text[:300]}")
    made = Collected()
    with logged_in(url, "0.8.1") as clients:
        for context, client in clients.items():
            client.add_rest_source(made.source_id)
            client.save("/event-to-profile", {
                "id": made.mapping_id, "name": f"E-mail of {made.event_type}",
                "event_type": {"id": made.event_type, "name": made.event_type},
                "enabled": True, "config": {},
                "event_to_profile": [{"event": {"value": "properties.email", "ref": True},
                                      "op": 0,
                                      "profile": {"value": "data.contact.email", "ref": True}}]})
            made.profiles[context] = {}
            for n in range(2):
                email = f"u{n}-{context}@{tenant}.example.com"
                profile_id = client.track(made.source_id, unique("session"), [
                    {"type": made.event_type, "properties": {"email": email}}])
                made.profiles[context][profile_id] = email
        for context, client in clients.items():
            for profile_id, email in made.profiles[context].items():
                wait_for(_serves(client, profile_id, email),
                         f"0.8.1 {context} GET /profile/{profile_id} with {email}")
    return made


def _serves(client: ApiClient, profile_id: str, email: str) -> Callable[[], bool | None]:
    def probe() -> bool | None:
        got = client.profile(profile_id)
        return True if got.status_code == 200 and email_of(got.json()) == email else None
    return probe


def index_counts(es: Elasticsearch, tenant: str) -> dict[str, int]:
    es.indices.refresh(index=f"*{tenant}*", expand_wildcards="all")
    found = es.cat.indices(index=f"*{tenant}*", format="json", expand_wildcards="all")
    rows = found.body
    assert isinstance(rows, list), f"_cat/indices answered {str(rows)[:200]}"
    return {str(row["index"]): int(row["docs.count"]) for row in rows}


def alias_map(es: Elasticsearch, tenant: str) -> dict[str, list[str]]:
    found = es.indices.get_alias(index=f"*{tenant}*", expand_wildcards="all").body
    aliases: dict[str, list[str]] = {}
    for index, entry in found.items():
        for alias in entry.get("aliases", {}):
            aliases.setdefault(alias, []).append(index)
    return {alias: sorted(indices) for alias, indices in sorted(aliases.items())}


def templates(es: Elasticsearch, tenant: str) -> list[str]:
    found = es.options(ignore_status=404).indices.get_index_template(name=f"*{tenant}*")
    legacy = es.options(ignore_status=404).indices.get_template(name=f"*{tenant}*")
    return sorted([t["name"] for t in found.get("index_templates", [])]
                  + [f"legacy:{name}" for name in legacy.body if name != "error"])


def install_facts(es: Elasticsearch, tenant: str, url: str) -> dict[str, Any]:
    """What 0.8.2's /install did beside 0.8.1's indices (the report of this test)."""
    answer = install(url)
    status = httpx.get(f"{url}/install", timeout=30).json()
    counts = index_counts(es, tenant)
    mappings = es.indices.get_mapping(index=f"*0820.{tenant}.*").body
    aliases = alias_map(es, tenant)
    users = [index for index in counts if "0820." in index and index.endswith("tracardi-user")]
    admins = {index: es.count(index=index, query={"term": {"email": ADMIN}}).body["count"]
              for index in users}
    return {
        "install_status": answer.status_code, "install_body": answer.text[:1500],
        "get_install_after": status, "templates": templates(es, tenant),
        "0820_mapping_meta_dynamic": {
            index: [bool(m["mappings"].get("_meta")), m["mappings"].get("dynamic")]
            for index, m in sorted(mappings.items())},
        "aliases_to_both_versions": {alias: indices for alias, indices in aliases.items()
                                     if any(".08x." in i or i.startswith("08x.")
                                            for i in indices)
                                     and any("0820." in i for i in indices)},
        "aliases": aliases,
        "admin_in_0820_user": admins,
        "0820_indices_with_docs": {index: n for index, n in sorted(counts.items())
                                   if "0820." in index and n > 0},
        "0820_indices": sorted(index for index in counts if "0820." in index),
    }


# beside Tracardi the daemon runs in its layout, at the version being installed: its
# tasks then go where 0.8.2's GUI shows them (README, Running beside Tracardi)
BESIDE_0820 = 'layout = "tracardi-0.8"\ndb_version = "0820"\n'


@contextmanager
def upgrade_daemon(tenant: str) -> Iterator[DaemonProcess]:
    """The configuration of a daemon of the upgrade role (it needs no licence) for
    ``tenant`` beside 0.8.2; started by ``start``, killed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="td-upgrade-"))
    daemon = DaemonProcess(workdir=workdir, config=workdir / "daemon.toml",
                           socket=str(workdir / "run" / "health.sock"),
                           log=workdir / "daemon.log", env=daemon_env())
    write_config(daemon.config, tenant, daemon.socket, ["upgrade"])
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace("[tracardi]\n", f"[tracardi]\n{BESIDE_0820}", 1))
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def start(daemon: DaemonProcess) -> None:
    daemon.start()
    daemon.wait_health(running("upgrade"), timeout_s=60)


def daemon_cli(daemon: DaemonProcess, tenant: str, action: str,
               *extra: str) -> dict[str, Any]:
    """``migrate ACTION --from 08x --from-tenant TENANT`` with the daemon's configuration;
    its exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "tracardi_daemon.cli", "migrate", action, "--from", "08x",
         "--from-tenant", tenant, "--config", str(daemon.config), *extra],
        env=daemon.env, capture_output=True, text=True, timeout=MIGRATE_TIMEOUT_S,
        check=False, stdin=subprocess.DEVNULL)
    return {"code": done.returncode, "stdout": done.stdout[-6000:],
            "stderr": done.stderr[-2000:]}


def problems_on_082(url: str, made: Collected) -> list[str]:
    """What the upgraded installation fails to do, as 0.8.2's API answers."""
    login = httpx.post(f"{url}/user/token", data={"username": ADMIN, "password": PASSWORD},
                       timeout=30)
    if login.status_code != 200:
        return [f"0.8.2 login with 0.8.1's admin: {login.status_code} {login.text[:200]}"]
    problems: list[str] = []
    status = httpx.get(f"{url}/install", timeout=30).json()
    if status.get("schema_ok") is not True:
        problems.append(f"GET /install: {json.dumps(status)[:300]}")
    with logged_in(url, "0.8.2") as clients:
        for name, client in clients.items():
            problems += _profile_problems(name, client, made.profiles[name])
            mapping = client.http.get(f"/event-to-profile/{made.mapping_id}")
            if mapping.status_code != 200 or (mapping.json() or {}).get("id") != made.mapping_id:
                problems.append(f"{name} GET /event-to-profile/{made.mapping_id}: "
                                f"{mapping.status_code} {mapping.text[:200]}")
    return problems


def _profile_problems(context: str, client: ApiClient, emails: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for profile_id, email in emails.items():
        got = client.profile(profile_id)
        if got.status_code != 200:
            problems.append(f"{context} GET /profile/{profile_id}: {got.status_code} "
                            f"{got.text[:200]}")
            continue
        found = email_of(got.json())
        if not isinstance(found, dict) or found.get("main") != email:
            problems.append(f"{context} profile {profile_id}: data.contact.email = "
                            f"{found!r}, not {{'main': {email!r}, ...}}")
    return problems


def test_081_migrated_by_the_daemon_opens_in_082(
        tracardi081_service: ApiService, tracardi_service: ApiService,
        prefix: str, elastic_client: Elasticsearch, redis_client: Any) -> None:
    tenant = prefix
    with api_for_tenant(tracardi081_service, tenant) as url:
        made = collect_on_081(url, tenant)
    with upgrade_daemon(tenant) as daemon:
        detached = daemon_cli(daemon, tenant, "detach")
        print("migrate detach:", json.dumps(detached, indent=1))
        print("aliases after detach:", json.dumps(alias_map(elastic_client, tenant), indent=1))
        assert detached["code"] == 0, detached
        assert f"detached {tenant}.tracardi-profile from 08x.{tenant}.tracardi-profile-" in (
            detached["stdout"]), detached["stdout"]
        with api_for_tenant(tracardi_service, tenant) as url:
            facts = install_facts(elastic_client, tenant, url)
        print("0.8.2 /install after migrate detach:", json.dumps(facts, indent=1))
        assert facts["install_status"] == 200, facts["install_body"]
        assert not facts["aliases_to_both_versions"], facts["aliases_to_both_versions"]
        start(daemon)
        outcome = {action: daemon_cli(daemon, tenant, action, *extra)
                   for action, extra in (("plan", ()), ("run", ("--follow",)))}
        outcome["daemon_log"] = daemon.output()[-3000:]
    print("daemon migrate:", json.dumps(outcome, indent=1))
    assert "refused" not in outcome["plan"]["stdout"], outcome["plan"]
    assert outcome["run"]["code"] == 0, outcome["run"]
    after = {"counts": index_counts(elastic_client, tenant),
             "aliases": alias_map(elastic_client, tenant)}
    print("after the migration:", json.dumps(after, indent=1))
    # every alias of the tenant names 0.8.2's indices alone
    old = {alias: indices for alias, indices in after["aliases"].items()
           if any(index.startswith(("08x.", "prod-08x.")) for index in indices)}
    assert not old, old

    with api_for_tenant(tracardi_service, tenant) as url:
        problems = problems_on_082(url, made)
    assert not problems, "\n".join(problems)
