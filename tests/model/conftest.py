"""Fixtures of the model tests: settings for a fresh tenant, an Elasticsearch client that
deletes that tenant's indices by name afterwards, and a runner for the CLI handlers."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.cli import definitions as definition_commands
from tracardi_daemon.cli import indices as commands
from tracardi_daemon.config.settings import Settings, TracardiSettings


def delete_tenant_indices(client: Elasticsearch, prefix: str) -> None:
    # by concrete names: clusters with action.destructive_requires_name (the default
    # since 8.0) refuse a wildcard delete
    names = list(client.indices.get(index=f"*{prefix}*", expand_wildcards="all").body)
    if names:
        client.indices.delete(index=",".join(names))
    found = client.options(ignore_status=404).indices.get_index_template(name=f"*{prefix}*")
    for template in found.get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])


@pytest.fixture
def es(_elastic_session: Elasticsearch, prefix: str) -> Iterator[Elasticsearch]:
    yield _elastic_session
    delete_tenant_indices(_elastic_session, prefix)


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=prefix))


@pytest.fixture
def cli_env(prefix: str, elastic_url: str) -> dict[str, str]:
    return {"TENANT_NAME": prefix, "ELASTIC_HOST": elastic_url}


CliRunner = Callable[..., int]


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> CliRunner:
    """Parse ``argv`` with the model's command groups and call the chosen handler."""

    def run(*argv: str, env: dict[str, str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog="tracardi-daemon")
        sub = parser.add_subparsers(dest="command", required=True)
        commands.add_commands(sub)
        definition_commands.add_commands(sub)
        args = parser.parse_args(list(argv))
        result: int = args.handler(args, cli_env if env is None else env)
        return result

    return run
