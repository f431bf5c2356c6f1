"""A Tracardi resource's credentials as an import source's connection keys: the forms
Tracardi's resource form stores, and the refusals that name the key."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.import_spec import from_tracardi, read_spec
from tracardi_daemon.roles.upgrade.imports.resources import (
    _elastic_keys,
    _mysql_keys,
    with_resource,
)

WHERE = "resource 'r' (R): credentials.test"


@pytest.mark.parametrize(("url", "port", "hosts"), [
    ("localhost", 9200, ["http://localhost:9200"]),
    ("es1,es2", 9201, ["http://es1:9201", "http://es2:9201"]),
    ("https://es.example.com:9243", 9200, ["https://es.example.com:9243"]),
    (["http://a:1", "b"], None, ["http://a:1", "http://b"]),
])
def test_elasticsearch_urls_take_the_scheme_and_port_a_bare_host_lacks(
        url: Any, port: int | None, hosts: list[str]) -> None:
    keys = _elastic_keys({"url": url, "port": port, "scheme": "http"}, WHERE)
    assert keys == {"hosts": hosts}


def test_elasticsearch_auth_and_api_key_are_passed_and_unsupported_keys_refused() -> None:
    keys = _elastic_keys({"url": "h", "scheme": "https", "username": "u", "password": "p",
                          "api_key_id": "id", "api_key": "key", "verify_certs": False}, WHERE)
    assert keys == {"hosts": ["https://h"], "username": "u", "password": "p",
                    "api_key": base64.b64encode(b"id:key").decode(), "verify_certs": False}
    with pytest.raises(InvalidInput, match=r"credentials.test.cafile is not supported"):
        _elastic_keys({"url": "h", "cafile": "/etc/ca.pem"}, WHERE)
    with pytest.raises(InvalidInput, match=r"credentials.test.url must be"):
        _elastic_keys({"url": ""}, WHERE)
    with pytest.raises(InvalidInput, match=r"credentials.test.scheme must be http or https"):
        _elastic_keys({"url": "h", "scheme": "ftp"}, WHERE)


def test_mysql_credentials_default_the_port_and_never_quote_the_password() -> None:
    assert _mysql_keys({"host": " db ", "user": "u", "password": "s3cret"}, WHERE) == {
        "host": "db", "port": 3306, "user": "u", "password": "s3cret"}
    with pytest.raises(InvalidInput, match=r"credentials.test.port must be a port") as caught:
        _mysql_keys({"host": "db", "user": "u", "password": "s3cret", "port": 70000}, WHERE)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(InvalidInput, match=r"credentials.test.user must be"):
        _mysql_keys({"host": "db"}, WHERE)


def test_tracardis_named_entities_become_the_source_keys_and_the_resource() -> None:
    source, config = from_tracardi({
        "id": "i", "module": "tracardi.process_engine.import.mysql_importer.MySQLTableImporter",
        "config": {"source": {"id": "r1", "name": "Shop DB"},
                   "database_name": {"id": "shop", "name": "shop"},
                   "table_name": {"id": "customers", "name": "customers"}, "batch": 10},
        "event_type": "t", "event_source": {"id": "s", "name": "S"},
        "api_url": "http://api"})
    assert source == "mysql-table"
    assert (config["database"], config["table"]) == ("shop", "customers")
    spec = read_spec("i", "I", source, config)
    assert (spec.resource_id, spec.resource_name) == ("r1", "Shop DB")
    assert spec.resource_label == "resource 'r1' (Shop DB)"


def test_a_resource_outside_tracardis_layouts_is_refused_naming_it(
        elastic_client: Elasticsearch) -> None:
    spec = read_spec("i", "I", "elasticsearch", {
        "index": "x", "resource": {"id": "r1", "name": "CRM"}, "event_type": "t",
        "event_source": "s"})
    with pytest.raises(InvalidInput, match=r"resource 'r1' is Tracardi's, but layout"):
        with_resource(spec, Settings(), elastic_client, debug=True)
