"""A migration's target indices, checked before the first batch and made ready before
the first write. Into a Tracardi installation the daemon copies into the indices
Tracardi's own ``/install`` made (their mappings are Tracardi's, which its look-ups
need); into the daemon's own layout it makes them itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.scan import count
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.upgrade.migration.aliases import shared_aliases
from tracardi_daemon.roles.upgrade.migration.lanes import WorkItem
from tracardi_daemon.roles.upgrade.migration.plan import Step

META_KEY = "tracardi_daemon_plan"  # in a target index's mapping _meta: the plan's key
# What a Tracardi installation holds in the indices a plan copies into before anything is
# collected: its POST /install adds the admin user and the default event sources
# (``tracardi/service/installation.py``, ``setup/data/defaults.py``), its log handler
# writes its own log lines, and task records (Tracardi's, and the daemon's of this very
# migration when it runs beside the new version) go to its task index. A copy overwrites
# such documents by id, as Tracardi's own migration does; any other document (a profile,
# a rule made by hand) stops the run.
SERVICE_WRITES = frozenset(("tracardi-user", "tracardi-source", "tracardi-log",
                            "tracardi-console-log", "tracardi-user-log", "tracardi-task"))
# db versions as Tracardi's releases name them, for the operator
RELEASES = {"070": "0.7.0", "071": "0.7.1", "072": "0.7.2", "073": "0.7.3", "074": "0.7.4",
            "080": "0.8.0", "08x": "0.8.1", "0820": "0.8.2", "09x": "0.9"}


@dataclass(frozen=True)
class TargetState:
    """What a target index holds before a plan writes into it."""

    exists: bool
    templated: bool  # an index template would give it its mapping on creation
    meta: Mapping[str, Any]  # its mapping's _meta
    documents: int


def inspect(elastic: Elasticsearch, index: str) -> TargetState:
    with elastic_errors(f"inspect {index}"):
        mapping = elastic.options(ignore_status=404).indices.get_mapping(index=index).body
        if mapping and "error" not in mapping:
            meta = next(iter(mapping.values())).get("mappings", {}).get("_meta", {})
            return TargetState(True, False, meta, count(elastic, index))
        simulated = elastic.indices.simulate_index_template(name=index).body
    return TargetState(False, bool(simulated.get("template")), {}, 0)


def target_refusal(elastic: Elasticsearch, items: list[WorkItem], steps: Mapping[str, Step],
                   *, source: Layout, target: Layout, key: str) -> str | None:
    """Why the plan must not write into its targets (None: it may): a Tracardi target
    that Tracardi has not installed, or one holding documents neither this plan nor
    Tracardi's install wrote."""
    names = {item.target: steps[item.step].target_name for item in items}
    missing: list[str] = []
    for index in sorted(names):
        state = inspect(elastic, index)
        if target.style == "tracardi" and not state.exists and not state.templated:
            missing.append(index)
        elif state.documents and state.meta.get(META_KEY) != key and not (
                target.style == "tracardi" and names[index] in SERVICE_WRITES):
            return (f"target index {index} already holds {state.documents} document(s) "
                    "this plan did not write; delete it or choose another target")
    if not missing:
        return None
    release = RELEASES.get(target.version, target.version)
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    refusal = (f"target index {missing[0]}{more} does not exist: Tracardi {release} makes "
               f"its own indices; install it for tenant {target.tenant!r} (its POST "
               "/install) and run the migration again")
    if shared_aliases(elastic, source, target):
        refusal += (". The old version's indices hold the aliases the new one uses, and "
                    "Tracardi's install refuses while they do: run `tracardi-daemon migrate "
                    "detach` with the same options before it")
    return refusal


def prepare_target(elastic: Elasticsearch, index: str, key: str) -> None:
    """Make ``index`` if missing (an index template, if any, gives the mapping), keep it
    out of every alias until the end, and mark it as this plan's beside the _meta it
    already has (Tracardi's names its version and tenant)."""
    with elastic_errors(f"create {index}"):
        try:
            elastic.indices.create(index=index)
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
        aliases = elastic.indices.get_alias(index=index).body
        names = list(aliases.get(index, {}).get("aliases", {}))
        if names:  # Tracardi's install or a template added it: switched when all succeeded
            elastic.indices.delete_alias(index=index, name=",".join(names))
        mapping = elastic.indices.get_mapping(index=index).body
        meta = dict(next(iter(mapping.values())).get("mappings", {}).get("_meta", {}))
        if meta.get(META_KEY) != key:
            elastic.indices.put_mapping(index=index, meta={**meta, META_KEY: key})
