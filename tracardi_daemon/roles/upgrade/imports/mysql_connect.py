"""A connection to a MySQL or MariaDB import source: its arguments checked against the
operator's timeouts, and a connect that fails the same way, with one message, whether
the port is closed, silent, or speaks another protocol."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pymysql
from pymysql.connections import Connection
from pymysql.constants import CR

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.remote_access import RemoteAccess, unusable

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3306
# how long the server waits for the daemon to take more rows before it drops the
# connection (its default is 60 s): between two batches the target writes the last one
_NET_WRITE_TIMEOUT_S = 3600
# a connection that failed before the server's greeting, or while reading it: refused,
# timed out, or something that is not MySQL at the port
_NOT_CONNECTED = frozenset({CR.CR_CONN_HOST_ERROR, CR.CR_SERVER_LOST, CR.CR_SERVER_GONE_ERROR,
                            CR.CR_UNKNOWN_HOST})


# PyMySQL's Connection is generic in its stubs only
if TYPE_CHECKING:
    _Base = Connection[Any]
else:
    _Base = Connection


def connected(args: Mapping[str, Any]) -> Connection[Any]:
    """A connection made with ``args`` (from ``connect_args``); the generic
    BackendUnavailable when no MySQL server could be spoken to."""
    host_port = (str(args["host"]), int(args["port"]))
    connection = _Connection(defer_connect=True, **args)
    try:
        connection.connect()
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in _NOT_CONNECTED:
            raise unusable("MySQL", *host_port) from None
        raise  # the server answered as MySQL does: e.g. access denied
    except (pymysql.err.Error, ValueError, LookupError, struct.error) as exc:
        # what a server of another protocol makes the client's parser fail with
        raise unusable("MySQL", *host_port) from exc
    return connection


class _Connection(_Base):
    """A connection whose greeting must come within the connect timeout: a port where
    something else listens (and waits for the client to speak first) fails as fast as
    a closed one, not after the long read timeout queries get."""

    _read_timeout: float | None  # PyMySQL's own: the timeout of every read

    def connect(self, sock: Any = None) -> None:
        read_timeout: float | None = self._read_timeout
        self._read_timeout = self.connect_timeout
        try:
            super().connect(sock)
        finally:
            self._read_timeout = read_timeout


def connect_args(connection: Mapping[str, Any], access: RemoteAccess) -> dict[str, Any]:
    """PyMySQL's arguments from the connection keys, checked."""
    host = connection.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host.strip():
        raise InvalidInput(f"config.host must be a host name or address, not {host!r}")
    port = connection.get("port", DEFAULT_PORT)
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInput(f"config.port must be a port number (1-65535), not {port!r}")
    user = connection.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidInput("config.user must be a string")
    password = connection.get("password", "")
    if password is None:
        password = ""
    if not isinstance(password, str):
        raise InvalidInput("config.password must be a string")  # never shown
    database = connection.get("database")
    if database is None:
        raise InvalidInput("config.database is required for a mysql import: the database "
                           "to connect to")
    if not isinstance(database, str) or not database.strip():
        raise InvalidInput(f"config.database must be a database name, not {database!r}")
    timeout = connection.get("connect_timeout_s", access.connect_timeout_s)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidInput(f"config.connect_timeout_s must be a number of seconds above 0, "
                           f"not {timeout!r}")
    # a definition may wait less than the operator allows, never more
    timeout = min(timeout, access.connect_timeout_s)
    return {
        "host": host.strip(), "port": port, "user": user, "password": password,
        "database": database, "connect_timeout": timeout,
        "read_timeout": access.read_timeout_s, "write_timeout": access.read_timeout_s,
        "charset": "utf8mb4", "autocommit": True,
        "init_command": f"SET SESSION net_write_timeout = {_NET_WRITE_TIMEOUT_S}",
    }
