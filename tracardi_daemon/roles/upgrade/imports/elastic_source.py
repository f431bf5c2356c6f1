"""An Elasticsearch index as an import source: the daemon's own cluster, or a remote one
named by ``hosts`` with its credentials; read with point in time + search_after in the
order of a unique field, so that there is no 10,000-document window and a takeover
resumes after the last document read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch, UnsupportedProductError

from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.scan import Scan, count
from tracardi_daemon.redact import mask_url
from tracardi_daemon.roles.upgrade.imports.remote_access import RemoteAccess, unusable
from tracardi_daemon.roles.upgrade.imports.rows import Row, cut_raw

# the fields tried, in order, when config.sort_field is not given: Tracardi's documents
# all carry a keyword ``id``; a dynamic mapping makes it text with an ``id.keyword``
_DEFAULT_SORT_FIELDS = ("id", "id.keyword")
_SORTABLE = ("keyword", "long", "integer", "short", "byte", "date", "date_nanos",
             "unsigned_long", "constant_keyword")


class ElasticSource:
    """Documents of ``index`` (a name, alias or pattern) matching ``query``, in
    ``sort_field`` order (a field unique per document)."""

    def __init__(self, client: Elasticsearch, index: str, *, query: Mapping[str, Any] | None,
                 sort_field: str | None, batch: int,
                 position: Mapping[str, Any] | None = None,
                 own_client: bool = False) -> None:
        self._client = client
        self._own_client = own_client
        self._index = index
        self._query = dict(query) if query else {"match_all": {}}
        self._read = int((position or {}).get("read", 0))
        after = (position or {}).get("after")
        self._sort_field = sort_field or self._find_sort_field()
        self._scan = Scan(client, index, query=self._query,
                          sort=[{self._sort_field: "asc"}], batch_size=batch,
                          after=after, keep_alive="5m")
        self._total: int | None = None

    def _find_sort_field(self) -> str:
        kinds = self._field_types(_DEFAULT_SORT_FIELDS)
        for name in _DEFAULT_SORT_FIELDS:
            if kinds.get(name) and kinds[name] <= set(_SORTABLE):
                return name
        raise InvalidInput(
            f"config.sort_field: {self._index} has no keyword 'id' field to read it in a "
            "resumable order; name a field unique per document (keyword, number or date)")

    def _field_types(self, fields: tuple[str, ...]) -> dict[str, set[str]]:
        """The types each field has across the indices of ``index``."""
        with elastic_errors(f"read the mapping of {self._index}"):
            found = self._client.indices.get_field_mapping(
                index=self._index, fields=",".join(fields), ignore_unavailable=True,
                allow_no_indices=True).body
        kinds: dict[str, set[str]] = {}
        for index_mapping in found.values():
            for name, entry in index_mapping.get("mappings", {}).items():
                for spec in entry.get("mapping", {}).values():
                    kinds.setdefault(name, set()).add(str(spec.get("type")))
        return kinds

    def total(self) -> int | None:
        if self._total is None:
            self._total = count(self._client, self._index, self._query)
        return self._total

    def read(self, limit: int) -> list[Row]:
        """The next batch of the scan (its size is the ``batch`` it was opened with)."""
        rows = []
        for hit in self._scan.next_batch():
            self._read += 1
            rows.append(Row(self._read, hit.id, hit.source,
                            cut_raw(json.dumps(hit.source, default=str))))
        return rows

    @property
    def position(self) -> dict[str, Any]:
        return {"after": self._scan.position, "read": self._read}

    def close(self) -> None:
        self._scan.close()
        if self._own_client:
            self._client.close()


def open_elastic_source(config: Mapping[str, Any], position: Mapping[str, Any] | None, *,
                        local: Elasticsearch, batch: int,
                        access: RemoteAccess | None = None) -> ElasticSource:
    """The source a definition's config describes: ``index`` (required; Tracardi's
    ``{id, name}`` accepted), ``query`` (an Elasticsearch query, default all),
    ``sort_field``, and for a remote cluster ``hosts`` with ``username``/``password``
    or ``api_key``, ``verify_certs``."""
    index = config.get("index")
    if isinstance(index, Mapping):
        index = index.get("id")
    if not isinstance(index, str) or not index.strip():
        raise InvalidInput("config.index is required for an elasticsearch import: the "
                           "index, alias or pattern to read")
    query = config.get("query")
    if query is not None and not isinstance(query, Mapping):
        raise InvalidInput("config.query must be an Elasticsearch query (a table)")
    sort_field = config.get("sort_field")
    if sort_field is not None and (not isinstance(sort_field, str) or not sort_field):
        raise InvalidInput("config.sort_field must be a field name")
    hosts = config.get("hosts")
    if hosts is None:
        return ElasticSource(local, index, query=query, sort_field=sort_field, batch=batch,
                             position=position)
    access = access or RemoteAccess()
    client, where = remote_client(config, access)
    try:
        return ElasticSource(client, index, query=query, sort_field=sort_field, batch=batch,
                             position=position, own_client=True)
    except (BackendUnavailable, BackendError) as exc:
        client.close()
        if isinstance(exc, BackendUnavailable) or isinstance(
                exc.__cause__, UnsupportedProductError):
            # refused, timed out, or not Elasticsearch: one message for all
            raise unusable("Elasticsearch", where, None) from None
        raise
    except BaseException:
        client.close()
        raise


def remote_client(config: Mapping[str, Any],
                  access: RemoteAccess) -> tuple[Elasticsearch, str]:
    """A client of the ``hosts`` of ``config``, each allowed by the outbound policy, and
    the hosts as errors name them."""
    hosts = config.get("hosts")
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise InvalidInput("config.hosts must be a URL or a list of URLs")
    where = ", ".join(_checked_host(host, access) for host in hosts)
    options: dict[str, Any] = {"request_timeout": access.read_timeout_s, "max_retries": 1}
    username, password = config.get("username"), config.get("password")
    if username is not None or password is not None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidInput("config.username and config.password go together, as strings")
        options["basic_auth"] = (username, password)
    api_key = config.get("api_key")
    if api_key is not None:
        if not isinstance(api_key, str):
            raise InvalidInput("config.api_key must be a string")
        options["api_key"] = api_key
    verify = config.get("verify_certs")
    if verify is not None:
        if not isinstance(verify, bool):
            raise InvalidInput("config.verify_certs must be true or false")
        options["verify_certs"] = verify
    return Elasticsearch(hosts, **options), where


def _checked_host(url: str, access: RemoteAccess) -> str:
    """``host:port`` of ``url``, once the policy allows it."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 9200)
    except ValueError:
        raise InvalidInput(f"config.hosts: {mask_url(url)[:80]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"config.hosts: {mask_url(url)[:80]!r} must be a URL like "
                           "https://host:9200")
    access.check("Elasticsearch", parts.hostname, port)
    return f"{parts.hostname}:{port}"
