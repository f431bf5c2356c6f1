"""A migration's aliases: each one moved from the source indices to the migrated ones
when every step succeeded, and — before Tracardi's new version is installed — the old
version's aliases taken off, since versions that share alias names (0.8.1 and 0.8.2)
cannot both hold them and Tracardi's install refuses while they exist."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.model.tracardi_names import PRODUCTION_PREFIX, Layout
from tracardi_daemon.roles.upgrade.migration.lanes import WorkItem
from tracardi_daemon.roles.upgrade.migration.plan import Step

Wanted = dict[str, tuple[set[str], set[str]]]  # alias: (target indices, source indices)


def target_aliases(items: list[WorkItem], steps: Mapping[str, Step], target: Layout) -> Wanted:
    """Each alias of the target layout, with the indices it is to name and the source
    indices it must stop naming."""
    wanted: Wanted = {}
    for item in items:
        step = steps[item.step]
        production = (step.production if step.production is not None
                      else item.target.startswith(PRODUCTION_PREFIX))
        alias = replace(target, production=production).alias(step.target_name)
        if alias != item.target:  # 0.9 names a single index as its alias would be
            targets, sources = wanted.setdefault(alias, (set(), set()))
            targets.add(item.target)
            sources.add(item.source)
    return wanted


def switch_aliases(elastic: Elasticsearch, wanted: Wanted) -> None:
    """One ``_aliases`` call per alias: the source indices out, the targets in; other
    members stay."""
    for alias, (targets, sources) in sorted(wanted.items()):
        with elastic_errors(f"move alias {alias} to the migrated indices"):
            members = _members(elastic, alias)
            actions: list[dict[str, Any]] = [
                {"remove": {"index": index, "alias": alias}}
                for index in sorted((members & sources) - targets)]
            actions += [{"add": {"index": index, "alias": alias}} for index in sorted(targets)]
            elastic.indices.update_aliases(actions=actions)


def shared_aliases(elastic: Elasticsearch, source: Layout,
                   target: Layout) -> list[tuple[str, str]]:
    """(alias, index) pairs where an index of the source installation, staging or
    production, copied by the plan or not, holds an alias the target version uses too:
    what makes Tracardi's install of the new version skip that index."""
    pairs: list[tuple[str, str]] = []
    for production in (False, True):
        env = PRODUCTION_PREFIX if production else ""
        mode = replace(target, production=production)
        with elastic_errors(f"read the aliases of {source.version}/{source.tenant}"):
            found = elastic.indices.get_alias(
                index=f"{env}{source.version}.{source.tenant}.*", ignore_unavailable=True,
                allow_no_indices=True).body
        own = f"{env}{source.tenant}."
        for index, entry in sorted(found.items()):
            for alias in sorted(entry.get("aliases", {})):
                if alias.startswith(own) and _alias_of(mode, alias[len(own):]) == alias:
                    pairs.append((alias, index))
    return sorted(pairs)


def detach(elastic: Elasticsearch, pairs: list[tuple[str, str]]) -> None:
    """Every pair's alias taken off its source index, in one ``_aliases`` call."""
    with elastic_errors("take the old version's aliases off its indices"):
        elastic.indices.update_aliases(actions=[{"remove": {"index": index, "alias": alias}}
                                                for alias, index in pairs])


def attach(elastic: Elasticsearch, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What ``detach`` took off, put back in one call, and each of those aliases taken off
    every other index (the new version's, if its install ran): the old version usable
    again. Returns the (alias, index) pairs taken off."""
    wanted: dict[str, set[str]] = {}
    for alias, index in pairs:
        wanted.setdefault(alias, set()).add(index)
    with elastic_errors("put the old version's aliases back"):
        others = [(alias, index) for alias, indices in sorted(wanted.items())
                  for index in sorted(_members(elastic, alias) - indices)]
        actions = [{"remove": {"index": index, "alias": alias}} for alias, index in others]
        actions += [{"add": {"index": index, "alias": alias}} for alias, index in pairs]
        elastic.indices.update_aliases(actions=actions)
    return others


def pairs_text(pairs: list[tuple[str, str]]) -> str:
    return json.dumps([list(pair) for pair in pairs])


def pairs_from(raw: str) -> list[tuple[str, str]]:
    return [(str(alias), str(index)) for alias, index in json.loads(raw)]


def _alias_of(layout: Layout, name: str) -> str | None:
    try:
        return layout.alias(name)
    except InvalidInput:  # not a name Tracardi's layout has
        return None


def _members(elastic: Elasticsearch, alias: str) -> set[str]:
    current = elastic.options(ignore_status=404).indices.get_alias(name=alias).body
    return set(current) if "error" not in current else set()
