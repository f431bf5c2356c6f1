"""PyMySQL's errors as the daemon's: BackendUnavailable when the connection failed (the
caller waits and retries), BackendError when the server refused the request; the
message names what was done and where, and never holds the password."""

from __future__ import annotations

import pymysql
from pymysql.constants import ER

from tracardi_daemon.errors import BackendError, BackendUnavailable, DaemonError
from tracardi_daemon.redact import MASK

__all__ = ["converted"]

# errors the server sends when the connection, not the request, failed (the client's own
# errors, 2000-2999, are all about the connection)
_CONNECTION_ERRORS = frozenset({
    ER.CON_COUNT_ERROR, ER.SERVER_SHUTDOWN, ER.NORMAL_SHUTDOWN, ER.SHUTDOWN_COMPLETE,
    ER.ABORTING_CONNECTION, ER.NEW_ABORTING_CONNECTION, ER.NET_READ_ERROR,
    ER.NET_READ_INTERRUPTED, ER.NET_ERROR_ON_WRITE, ER.NET_WRITE_INTERRUPTED,
    1927,  # MariaDB's ER_CONNECTION_KILLED
    4031,  # MySQL's ER_CLIENT_INTERACTION_TIMEOUT
})


def converted(exc: pymysql.err.Error, what: str, address: str,
              password: str | None) -> DaemonError:
    """``exc`` as ``"<what> on <address>: <message> (<code>)"``."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = (str(exc.args[1]) if len(exc.args) > 1 else str(exc)) or type(exc).__name__
    detail = f"{what} on {address}: {text}" + (f" ({code})" if code else "")
    # neither the server nor PyMySQL puts the password in a message; a query might
    if password:
        detail = detail.replace(password, MASK)
    if isinstance(exc, pymysql.err.InterfaceError) or (
            code is not None and (2000 <= code < 3000 or code in _CONNECTION_ERRORS)):
        return BackendUnavailable("mysql", detail)
    return BackendError("mysql", detail)
