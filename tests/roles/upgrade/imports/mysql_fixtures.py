"""The real MariaDB started by ``scripts/services``: a fresh database per test.

``TEST_MYSQL_URL`` (default ``mysql://tracardi:tracardi@127.0.0.1:3306``, the account
``scripts/services`` creates) names the server. Import the fixture where it is used:
``from tests.roles.upgrade.imports.mysql_fixtures import mysql_database``.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pytest
from pymysql.connections import Connection

from tracardi_daemon.redact import mask_url

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://tracardi:tracardi@127.0.0.1:3306")


def mysql_address() -> dict[str, Any]:
    """host, port, user and password of ``TEST_MYSQL_URL``."""
    parts = urlsplit(MYSQL_URL)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or ""), "password": unquote(parts.password or "")}


def mysql_connection(database: Mapping[str, Any] | None = None) -> Connection[Any]:
    """A connection (autocommit) to the server, in ``database`` (the fixture's dict)."""
    address = dict(database) if database is not None else mysql_address()
    return pymysql.connect(host=address["host"], port=address["port"], user=address["user"],
                           password=address["password"], database=address.get("database"),
                           charset="utf8mb4", autocommit=True, connect_timeout=5)


@functools.cache
def _check_reachable() -> None:
    try:
        mysql_connection().close()
    except pymysql.err.Error as exc:
        pytest.exit(f"MariaDB at {mask_url(MYSQL_URL)} is not reachable ({exc}); "
                    "run scripts/services up")


@pytest.fixture
def mysql_database() -> Iterator[dict[str, Any]]:
    """A new empty database (utf8mb4): ``{"host", "port", "user", "password",
    "database"}``; dropped after the test."""
    _check_reachable()
    name = "t" + uuid.uuid4().hex[:12]
    with mysql_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                       "COLLATE utf8mb4_unicode_ci")
    try:
        yield {**mysql_address(), "database": name}
    finally:
        with mysql_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
