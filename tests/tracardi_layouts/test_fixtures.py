"""The Tracardi installation fixtures against the real Elasticsearch and MariaDB: names and
aliases as Tracardi makes them, Tracardi's documents accepted, undeclared fields refused
where Tracardi's mappings are strict, and the 0.9 tables keyed by (id, tenant, production)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.roles.upgrade.imports.mysql_fixtures import MYSQL_URL, mysql_database
from tests.tracardi_layouts import (
    DATA_INDICES,
    DEFINITION_INDICES,
    INDICES,
    VERSIONS,
    alias,
    index_body,
    partition_suffix,
    physical_index,
    template_name,
    template_pattern,
)
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import (
    MYSQL_09X_TABLES,
    TracardiInstall,
    install_tracardi_elastic,
    install_tracardi_mysql,
)

__all__ = ["mysql_database"]

DEFINITION_VERSIONS = ("08x", "0820")


@pytest.fixture(params=VERSIONS)
def installed(request: pytest.FixtureRequest, elastic_client: Elasticsearch,
              prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, request.param, prefix)
    yield install
    install.drop()


def _aliased(es: Elasticsearch, alias: str) -> set[str]:
    return set(es.indices.get_alias(name=alias).body)


def _refusal(es: Elasticsearch, index: str, document: dict[str, Any]) -> str:
    with pytest.raises(BadRequestError) as refused:
        es.index(index=index, id=document.get("id"), document=document)
    error_type: str = refused.value.body["error"]["type"]
    return error_type


def test_partition_suffixes_are_tracardis_unpadded_names() -> None:
    assert partition_suffix("month", 2024, 3) == "2024-3"
    assert partition_suffix("month", 2023, 10) == "2023-10"
    assert partition_suffix("quarter", 2024, 3) == "2024-q1"
    assert partition_suffix("quarter", 2024, 12) == "2024-q4"
    assert partition_suffix("year", 2024, 7) == "2024-year"
    with pytest.raises(ValueError, match="partitioning"):
        partition_suffix("day", 2024, 3)


def test_names_follow_tracardis_examples() -> None:
    # the examples in Tracardi's index.py and the reference: prod- leads, 0.9 aliases carry
    # the version
    assert physical_index("09x", "8504a", "profile", production=True, suffix="2024-q1") == \
        "prod-09x.8504a.tracardi-profile-2024-q1"
    assert alias("09x", "8504a", "profile", production=True) == "prod-09x.8504a.tracardi-profile"
    assert physical_index("08x", "01506", "profile", suffix="2023-10") == \
        "08x.01506.tracardi-profile-2023-10"
    assert alias("08x", "01506", "profile") == "01506.tracardi-profile"
    assert alias("0820", "acme", "event-management", production=True) == \
        "prod-acme.tracardi-event-management"
    assert template_name("0820", "acme", "event") == "template.0820.acme.tracardi-event"
    assert template_pattern("09x", "acme", "session", production=True) == \
        "prod-09x.acme.tracardi-session-*-*"
    with pytest.raises(ValueError, match="no index"):
        alias("09x", "acme", "rule")


def test_shared_08x_files_serve_0820_except_where_0820_changed() -> None:
    for name in DEFINITION_INDICES:
        same = index_body("08x", name) == index_body("0820", name)
        assert same is (name != "rule"), name
    for name in DATA_INDICES:
        assert index_body("08x", name) != index_body("0820", name)
        assert index_body("0820", name) != index_body("09x", name)
    with pytest.raises(ValueError, match="no index"):
        index_body("09x", "segment")


def test_every_index_is_strict_as_tracardi_declares_it() -> None:
    for version in VERSIONS:
        for name in INDICES[version]:
            assert index_body(version, name)["mappings"]["dynamic"] == "strict", (version, name)


@pytest.mark.parametrize("production", [False, True])
def test_08x_names_carry_the_version_and_aliases_do_not(
        elastic_client: Elasticsearch, prefix: str, production: bool) -> None:
    env = "prod-" if production else ""
    install = install_tracardi_elastic(elastic_client, "08x", prefix, production=production)
    try:
        profile = install.indices["profile"]
        assert profile.alias == f"{env}{prefix}.tracardi-profile"
        assert profile.indices == (f"{env}08x.{prefix}.tracardi-profile-2024-3",)
        assert profile.template == f"{env}template.08x.{prefix}.tracardi-profile"
        mapping = install.indices["event_to_profile"]
        assert mapping.alias == f"{env}{prefix}.tracardi-event_to_profile"
        assert mapping.indices == (f"{env}08x.{prefix}.tracardi-event_to_profile",)
        assert mapping.template is None
        for name, index in install.indices.items():
            assert _aliased(elastic_client, index.alias) == set(index.indices), name
        template = elastic_client.indices.get_index_template(name=profile.template)
        assert template["index_templates"][0]["index_template"]["index_patterns"] == [
            f"{env}08x.{prefix}.tracardi-profile-*-*"]
    finally:
        install.drop()


def test_0820_and_09x_partition_by_their_defaults(elastic_client: Elasticsearch,
                                                   prefix: str) -> None:
    for version in ("0820", "09x"):
        install = install_tracardi_elastic(elastic_client, version, prefix)
        try:
            # 0.9 puts the version into the alias too
            stem = f"{version}.{prefix}" if version == "09x" else prefix
            assert install.indices["profile"].alias == f"{stem}.tracardi-profile"
            assert install.indices["profile"].indices == (
                f"{version}.{prefix}.tracardi-profile-2024-q1",)
            event_suffix = "2024-3" if version == "0820" else "2024-q1"
            assert install.indices["event"].indices == (
                f"{version}.{prefix}.tracardi-event-{event_suffix}",)
            assert set(install.indices) == set(INDICES[version])
        finally:
            install.drop()


def test_an_alias_spans_every_partition_and_the_template_makes_new_ones(
        elastic_client: Elasticsearch, prefix: str) -> None:
    install = install_tracardi_elastic(elastic_client, "08x", prefix,
                                       partitions={"profile": ["2024-3", "2024-4"]})
    try:
        profile = install.indices["profile"]
        assert profile.write_index == f"08x.{prefix}.tracardi-profile-2024-4"
        assert _aliased(elastic_client, profile.alias) == set(profile.indices)
        # a partition Tracardi creates on its first write gets mapping and alias from the template
        later = f"08x.{prefix}.tracardi-profile-2024-5"
        elastic_client.index(index=later, id="p9", document=docs.profile_document("08x", "p9"))
        assert later in _aliased(elastic_client, profile.alias)
        assert _refusal(elastic_client, later, {"id": "p10", "unknown": 1}) == \
            "strict_dynamic_mapping_exception"
    finally:
        install.drop()
    assert not elastic_client.indices.exists(index=later)


def test_tracardi_documents_are_accepted_and_read_through_the_alias(
        installed: TracardiInstall) -> None:
    es, version = installed.elastic, installed.version
    documents = {
        "profile": docs.profile_document(version, "p1", segments=("vip",)),
        "event": docs.event_document(version, "e1", profile_id="p1", session_id="s1",
                                     properties={"email": "ada@example.com"}),
        "session": docs.session_document(version, "s1", profile_id="p1"),
    }
    for name, document in documents.items():
        es.index(index=installed.indices[name].write_index, id=document["id"],
                 document=document, refresh=True)
        found = es.get(index=installed.indices[name].write_index, id=document["id"])
        assert found["_source"] == document
        hits = es.search(index=installed.indices[name].alias,
                         query={"term": {"id": document["id"]}})["hits"]["hits"]
        assert [hit["_id"] for hit in hits] == [document["id"]]
    mapping = es.indices.get_mapping(index=installed.indices["profile"].write_index)
    assert next(iter(mapping.body.values()))["mappings"]["_meta"] == {
        "version": version, "name": installed.tenant}


def test_an_undeclared_field_is_refused_by_every_strict_index(
        installed: TracardiInstall) -> None:
    es, version = installed.elastic, installed.version
    profile = docs.profile_document(version, "p2")
    assert _refusal(es, installed.indices["profile"].write_index,
                    {**profile, "not_in_tracardi": "x"}) == "strict_dynamic_mapping_exception"
    event = docs.event_document(version, "e2", profile_id="p2", session_id="s2")
    event["metadata"]["not_in_tracardi"] = True
    assert _refusal(es, installed.indices["event"].write_index, event) == \
        "strict_dynamic_mapping_exception"
    for name, index in installed.indices.items():
        assert _refusal(es, index.write_index, {"id": "x", "not_in_tracardi": 1}) == \
            "strict_dynamic_mapping_exception", name


def test_each_version_takes_only_its_own_profile_fields(installed: TracardiInstall) -> None:
    es, version = installed.elastic, installed.version
    index = installed.indices["profile"].write_index
    with_primary_id = {**docs.profile_document(version, "p3"), "primary_id": "p3"}
    if version == "09x":
        es.index(index=index, id="p3", document=with_primary_id)
    else:
        assert _refusal(es, index, with_primary_id) == "strict_dynamic_mapping_exception"
    # 0.8.2 made data.contact.email an object; 0.8.1 has a keyword there
    email_object = docs.profile_document(version, "p4")
    email_object["data"]["contact"]["email"] = {"main": "ada@example.com"}
    if version == "08x":
        with pytest.raises(BadRequestError):
            es.index(index=index, id="p4", document=email_object)
    else:
        es.index(index=index, id="p4", document=email_object)


@pytest.mark.parametrize("version", DEFINITION_VERSIONS)
def test_08x_definition_documents_fit_their_indices(
        elastic_client: Elasticsearch, prefix: str, version: str) -> None:
    install = install_tracardi_elastic(elastic_client, version, prefix)
    try:
        definitions = {
            "segment": docs.segment_document("Frequent visitor", "profile@stats.visits > 10",
                                             event_types=("page-view",)),
            "live-segment": docs.live_segment_document(
                "ls1", workflow_id="wf1", workflow_name="Segmentation",
                condition="stats.visits > 3", segment="returning", version=version),
            "event_to_profile": docs.event_to_profile_document(
                "etp1", "identify", [("properties.email", 1, "data.contact.email")]),
            "event-management": docs.event_management_document(
                "purchase", index_schema={"properties.value": "data.ec.order.value"}),
            "rule": docs.segment_add_rule_document(
                "r1", segment_id="frequent-visitor", segment_name="Frequent visitor",
                flow_id="wf2", flow_name="Welcome", version=version),
            "import": docs.import_document("i1", config={"source": {"id": "r"}},
                                           module="mysql"),
            "task": docs.task_document("t1", name="Import i1", version=version),
        }
        for name, document in definitions.items():
            index = install.indices[name]
            elastic_client.index(index=index.write_index, id=document["id"], document=document,
                                 refresh=True)
            assert elastic_client.get(index=index.alias, id=document["id"])["_source"] == document
        worker_task = docs.worker_task_document("job-1", name="Migration")
        elastic_client.index(index=install.indices["task"].write_index, id="job-1",
                             document=worker_task)
        stored = elastic_client.get(index=install.indices["import"].alias, id="i1")["_source"]
        assert docs.decode_import_config(stored["config"]) == {"source": {"id": "r"}}
    finally:
        install.drop()


def test_0_8_1_rules_refuse_metadata_time_create_even_when_null(
        elastic_client: Elasticsearch, prefix: str) -> None:
    install = install_tracardi_elastic(elastic_client, "08x", prefix)
    try:
        rule = docs.segment_add_rule_document("r2", segment_id="s", segment_name="S",
                                              flow_id="f", flow_name="F")
        rule["metadata"]["time"]["create"] = None
        assert _refusal(elastic_client, install.indices["rule"].write_index, rule) == \
            "strict_dynamic_mapping_exception"
    finally:
        install.drop()


def test_another_template_over_tracardis_partitions_needs_another_priority(
        elastic_client: Elasticsearch, prefix: str) -> None:
    install = install_tracardi_elastic(elastic_client, "09x", prefix)
    other = f"other-{prefix}"
    try:
        # Tracardi's templates have no priority (0): an overlapping one at 0 is refused
        with pytest.raises(BadRequestError, match="same priority"):
            elastic_client.indices.put_index_template(
                name=other, index_patterns=[f"09x.{prefix}.tracardi-profile-*"])
    finally:
        elastic_client.options(ignore_status=404).indices.delete_index_template(name=other)
        install.drop()


def test_drop_removes_indices_aliases_and_templates(elastic_client: Elasticsearch,
                                                    prefix: str) -> None:
    install = install_tracardi_elastic(elastic_client, "0820", prefix, production=True)
    assert install.indices["profile"].indices == (f"prod-0820.{prefix}.tracardi-profile-2024-q1",)
    assert install.indices["rule"].alias == f"prod-{prefix}.tracardi-rule"
    install.drop()
    left = elastic_client.options(ignore_status=404).indices.get(index=f"*{prefix}*")
    assert not [name for name in left.body if name != "error"]
    templates = elastic_client.options(ignore_status=404).indices.get_index_template(
        name=f"*{prefix}*")
    assert not templates.body.get("index_templates")


def test_a_failed_install_leaves_nothing(elastic_client: Elasticsearch, prefix: str) -> None:
    with pytest.raises(BadRequestError):
        # an upper-case suffix is not a valid index name: the second partition fails
        install_tracardi_elastic(elastic_client, "08x", prefix,
                                 partitions={"event": ["2024-3", "2024-Q1"]})
    left = elastic_client.options(ignore_status=404).indices.get(index=f"*{prefix}*")
    assert not [name for name in left.body if name != "error"]


def test_09x_tables_are_keyed_by_id_tenant_and_production(
        mysql_database: dict[str, Any]) -> None:
    tables = install_tracardi_mysql(MYSQL_URL, mysql_database["database"])
    with tables.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        assert {row[0] for row in cursor.fetchall()} == set(MYSQL_09X_TABLES)
        for table in MYSQL_09X_TABLES:
            cursor.execute(
                "SELECT column_name FROM information_schema.key_column_usage "
                "WHERE table_schema = %s AND table_name = %s AND constraint_name = 'PRIMARY' "
                "ORDER BY ordinal_position", (mysql_database["database"], table))
            assert [row[0] for row in cursor.fetchall()] == ["id", "tenant", "production"], table
        insert = ("INSERT INTO task (id, timestamp, status, name, type, progress, task_id, "
                  "params, tenant, production) VALUES (%s, '2024-03-05 10:00:00', 'pending', "
                  "'Import', 'import', 0, %s, %s, %s, %s)")
        params = json.dumps({"import_id": "i1", "batch": 100})
        cursor.execute(insert, ("t1", "t1", params, "acme", False))
        cursor.execute(insert, ("t1", "t1", params, "acme", True))  # the production twin
        cursor.execute(insert, ("t1", "t1", params, "other", False))
        with pytest.raises(pymysql.err.IntegrityError):
            cursor.execute(insert, ("t1", "t1", params, "acme", False))
        with pytest.raises(pymysql.err.OperationalError):  # json_valid() check of a JSON column
            cursor.execute(insert, ("t2", "t2", "not json", "acme", False))
        for table in MYSQL_09X_TABLES:
            cursor.execute(f"INSERT INTO `{table}` (id, tenant, production) "
                           "VALUES ('k', 'acme', 0), ('k', 'acme', 1)")
            cursor.execute(f"SELECT COUNT(*) FROM `{table}` WHERE id = 'k'")
            assert cursor.fetchone() == (2,), table
        cursor.execute("SELECT id, tenant, production, params FROM task "
                       "WHERE id = %s AND tenant = %s AND production = %s", ("t1", "acme", True))
        row = cursor.fetchone()
        assert row is not None
        assert row[:3] == ("t1", "acme", 1)
        assert json.loads(row[3]) == {"import_id": "i1", "batch": 100}
    tables.drop()
    with tables.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        assert cursor.fetchall() == ()
