"""Create an existing Tracardi installation in the real Elasticsearch and MariaDB for a
test: Tracardi's indices, templates and aliases (0.8.1, 0.8.2, 0.9) or its 0.9 tables.

Plain functions, not fixtures, so any test folder can use them::

    install = install_tracardi_elastic(es, "08x", prefix)
    try: ... finally: install.drop()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from elasticsearch import Elasticsearch
from pymysql.connections import Connection

from tests.roles.upgrade.imports.mysql_fixtures import mysql_connection
from tests.tracardi_layouts import (
    DATA_INDICES,
    DEFAULT_PARTITIONING,
    INDICES,
    MYSQL_09X_DDL,
    alias,
    check_version,
    index_body,
    partition_suffix,
    physical_index,
    template_name,
    template_pattern,
)

# the month the default partitions are named after: fixed, so names do not depend on the clock
DEFAULT_PARTITION_MONTH = (2024, 3)
MYSQL_09X_TABLES: tuple[str, ...] = (
    "event_to_profile_mapping",
    "event_mapping",
    "workflow_trigger",
    "import",
    "task",
    "resource",
)


@dataclass(frozen=True)
class InstalledIndex:
    """One logical index of an installation."""

    alias: str
    indices: tuple[str, ...]  # physical indices made; partitions in the order given
    pattern: str  # every physical index of it, later partitions too (the template's pattern)
    template: str | None = None  # the index template of a partitioned index

    @property
    def write_index(self) -> str:
        """Where Tracardi writes new records: the last partition given."""
        return self.indices[-1]


@dataclass(frozen=True)
class TracardiInstall:
    elastic: Elasticsearch
    version: str
    tenant: str
    production: bool
    indices: dict[str, InstalledIndex]  # by logical name: profile, event, segment, ...

    def drop(self) -> None:
        """Delete the installation's indices, partitions made after the install included
        (their aliases go with them), and its templates."""
        if not self.indices:
            return  # an empty index expression would name every index
        names = list(self.elastic.indices.get(
            index=",".join(index.pattern for index in self.indices.values()),
            ignore_unavailable=True, allow_no_indices=True, expand_wildcards="all").body)
        # by exact name: clusters may refuse wildcard deletes (action.destructive_requires_name)
        for start in range(0, len(names), 50):  # a URL of bounded length
            self.elastic.options(ignore_status=404).indices.delete(
                index=",".join(names[start:start + 50]))
        for index in self.indices.values():
            if index.template is not None:
                self.elastic.options(ignore_status=404).indices.delete_index_template(
                    name=index.template)


def install_tracardi_elastic(elastic: Elasticsearch, version: str, tenant: str, *,
                             production: bool = False,
                             partitions: Mapping[str, Sequence[str]] | None = None,
                             ) -> TracardiInstall:
    """Create the indices of Tracardi ``version`` (08x, 0820, 09x) for ``tenant`` as its
    installer does: per data index a template (pattern, body, alias) and the partitions
    named in ``partitions`` (suffixes such as ``2024-3``, ``2024-q1``, ``2024-year``; by
    default one partition of March 2024 in the version's default partitioning); per
    definition index (0.8.x) one index with its alias."""
    check_version(version)
    given = dict(partitions or {})
    unknown = set(given) - set(DATA_INDICES)
    if unknown:
        raise ValueError(f"partitions only for {DATA_INDICES}, got {sorted(unknown)}")
    install = TracardiInstall(elastic, version, tenant, production, {})
    try:
        for name in INDICES[version]:
            if name in DATA_INDICES:
                suffixes = given.get(name) or [
                    partition_suffix(DEFAULT_PARTITIONING[version][name], *DEFAULT_PARTITION_MONTH)]
                _install_partitioned(install, name, suffixes)
            else:
                _install_single(install, name)
    except BaseException:
        install.drop()
        raise
    return install


def _body(install: TracardiInstall, name: str) -> dict[str, Any]:
    body = index_body(install.version, name)
    # Tracardi's _meta: the db version and the installation's name (the tenant when single-tenant)
    body["mappings"]["_meta"] = {"version": install.version, "name": install.tenant}
    # one node here: one shard, no replicas (Tracardi takes both from its configuration)
    body["settings"] = {"number_of_shards": 1, "number_of_replicas": 0, **body["settings"]}
    return body


def _install_partitioned(install: TracardiInstall, name: str, suffixes: Sequence[str]) -> None:
    version, tenant, production = install.version, install.tenant, install.production
    index = InstalledIndex(
        alias=alias(version, tenant, name, production=production),
        indices=tuple(physical_index(version, tenant, name, production=production, suffix=suffix)
                      for suffix in suffixes),
        pattern=template_pattern(version, tenant, name, production=production),
        template=template_name(version, tenant, name, production=production))
    install.indices[name] = index  # recorded first, so a failure part-way drops it all
    body = _body(install, name)
    install.elastic.indices.put_index_template(
        name=template_name(version, tenant, name, production=production),
        index_patterns=[index.pattern],
        template={**body, "aliases": {index.alias: {}}})
    for physical in index.indices:
        install.elastic.indices.create(index=physical, aliases={index.alias: {}}, **body)


def _install_single(install: TracardiInstall, name: str) -> None:
    version, tenant, production = install.version, install.tenant, install.production
    physical = physical_index(version, tenant, name, production=production)
    index = InstalledIndex(alias=alias(version, tenant, name, production=production),
                           indices=(physical,), pattern=physical)
    install.indices[name] = index
    install.elastic.indices.create(index=index.indices[0], aliases={index.alias: {}},
                                   **_body(install, name))


@dataclass(frozen=True)
class TracardiTables:
    """The 0.9 tables made in ``database``."""

    address: Mapping[str, Any]  # host, port, user, password, database
    tables: tuple[str, ...]

    def connect(self) -> Connection[Any]:
        """A connection (autocommit) in the tables' database."""
        return mysql_connection(self.address)

    def drop(self) -> None:
        with self.connect() as connection, connection.cursor() as cursor:
            for table in self.tables:
                cursor.execute(f"DROP TABLE IF EXISTS `{table}`")


def install_tracardi_mysql(connection_url: str, database: str) -> TracardiTables:
    """Create Tracardi 0.9's definition tables (``mysql_09x.sql``) in the existing
    ``database`` of the server at ``connection_url`` (``mysql://user:password@host:port``)."""
    parts = urlsplit(connection_url)
    tables = TracardiTables(
        address={"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
                 "user": unquote(parts.username or ""),
                 "password": unquote(parts.password or ""), "database": database},
        tables=MYSQL_09X_TABLES)
    try:
        with tables.connect() as connection, connection.cursor() as cursor:
            for statement in mysql_09x_statements():
                cursor.execute(statement)
    except BaseException:
        tables.drop()
        raise
    return tables


def mysql_09x_statements() -> list[str]:
    """The CREATE TABLE statements of ``mysql_09x.sql``."""
    lines = [line for line in MYSQL_09X_DDL.read_text(encoding="utf-8").splitlines()
             if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]

