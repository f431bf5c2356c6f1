"""An import's Tracardi resource turned into its source's connection keys: the
Elasticsearch URLs and auth, or the MySQL host, port, user and password, of the
credentials Tracardi's ``debug`` flag selects (``test`` when set, else ``production``).

The keys go into the spec's config in memory only; they never reach a queue message,
the task record or a log line. The source adapters then check them as they check a
definition's own keys, the outbound policy included."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.import_spec import ImportSpec
from tracardi_daemon.model.tracardi_resources import load_resource

# the keys a resource's credentials replace: a definition may not mix its own with them
_ELASTIC_KEYS: tuple[str, ...] = ("hosts", "username", "password", "api_key", "verify_certs")
_MYSQL_KEYS: tuple[str, ...] = ("host", "port", "user", "password")
# Tracardi's Elasticsearch credentials the daemon cannot honour: refused, not dropped
_UNSUPPORTED_ELASTIC = ("cafile", "cloud_id")


def with_resource(spec: ImportSpec, settings: Settings, elastic: Elasticsearch, *,
                  debug: bool) -> ImportSpec:
    """``spec`` with the connection keys of its resource; unchanged without one."""
    if spec.resource_id is None:
        return spec
    resource = load_resource(settings, elastic, spec.resource_id, spec.resource_name)
    which = "test" if debug else "production"
    credentials = resource.credentials(debug=debug)
    if not credentials:
        raise InvalidInput(f"{resource.label} has no {which} credentials "
                           f"({'debug' if debug else 'production'} run)")
    where = f"{resource.label}: credentials.{which}"
    if spec.source == "elasticsearch":
        keys, connection = _ELASTIC_KEYS, _elastic_keys(credentials, where)
    else:
        keys, connection = _MYSQL_KEYS, _mysql_keys(credentials, where)
    config = {key: value for key, value in spec.config.items() if key not in keys}
    return replace(spec, config={**config, **connection},
                   resource_name=spec.resource_name or resource.name)


def _elastic_keys(credentials: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Tracardi's ``ElasticCredentials`` (url: one host, a comma list or a list; scheme;
    port; username/password; api_key_id/api_key; verify_certs) as the source's keys."""
    for key in _UNSUPPORTED_ELASTIC:
        if credentials.get(key):
            raise InvalidInput(f"{where}.{key} is not supported by the daemon's importer")
    url = credentials.get("url")
    urls = url.split(",") if isinstance(url, str) else url
    if not isinstance(urls, list) or not urls or not all(
            isinstance(item, str) and item.strip() for item in urls):
        raise InvalidInput(f"{where}.url must be a host or URL, a comma list, or a list")
    scheme = credentials.get("scheme") or "http"
    if scheme not in ("http", "https"):
        raise InvalidInput(f"{where}.scheme must be http or https, not {str(scheme)[:20]!r}")
    port = _port(credentials.get("port"), f"{where}.port")
    keys: dict[str, Any] = {"hosts": [_host_url(item.strip(), scheme, port) for item in urls]}
    username, password = credentials.get("username"), credentials.get("password")
    if username and password:  # Tracardi sends auth only with both
        keys["username"], keys["password"] = str(username), str(password)
    api_key_id, api_key = credentials.get("api_key_id"), credentials.get("api_key")
    if api_key_id and api_key:
        keys["api_key"] = base64.b64encode(f"{api_key_id}:{api_key}".encode()).decode("ascii")
    verify = credentials.get("verify_certs")
    if verify is not None:
        if not isinstance(verify, bool):
            raise InvalidInput(f"{where}.verify_certs must be true or false")
        keys["verify_certs"] = verify
    return keys


def _host_url(url: str, scheme: str, port: int | None) -> str:
    """``url`` with the resource's scheme and port where it names none (Tracardi's form
    keeps them apart: ``url`` = ``localhost``, ``port`` = 9200, ``scheme`` = ``http``)."""
    if "://" not in url:
        url = f"{scheme}://{url}"
    try:
        has_port = urlsplit(url).port is not None
    except ValueError:
        return url  # the source names the bad URL (masked)
    return url if has_port or port is None else f"{url.rstrip('/')}:{port}"


def _mysql_keys(credentials: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Tracardi's MySQL connection (host, port, user, password); the database is the
    import's own ``database_name``."""
    host, user = credentials.get("host"), credentials.get("user")
    if not isinstance(host, str) or not host.strip():
        raise InvalidInput(f"{where}.host must be a host name or address")
    if not isinstance(user, str) or not user:
        raise InvalidInput(f"{where}.user must be a user name")
    password = credentials.get("password")
    if password is not None and not isinstance(password, str):
        raise InvalidInput(f"{where}.password must be a string")  # never shown
    port = _port(credentials.get("port"), f"{where}.port") or 3306
    return {"host": host.strip(), "port": port, "user": user, "password": password or ""}


def _port(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidInput(f"{where} must be a port number (1-65535), not {str(value)[:20]!r}")
    return value
