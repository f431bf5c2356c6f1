"""MySQL values as an import passes them on: JSON-ready values for rows, and key values
saved into a position and restored with their type, so that a resumed read sends the
server the same value it stopped at."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from tracardi_daemon.errors import InvalidInput


def json_ready(value: Any) -> Any:
    """A value of PyMySQL's as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # a TIME column: a duration, maybe negative or > 24 h
        return _duration(value)
    if isinstance(value, Decimal):
        # the server sends a DECIMAL with its scale: 10 from DECIMAL(5,0), 10.00 from (5,2)
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(str(item) for item in value)
    return str(value)


def _duration(value: timedelta) -> str:
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, micros = divmod(abs(micros), 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{micros:06d}" if micros else text


# A position holds the last key read as JSON; values JSON has no type for are tagged, so
# that the key goes back to the server as the same value (bytes as bytes, not text).
_RESTORERS: dict[str, Callable[[Any], Any]] = {
    "decimal": Decimal,
    "bytes": base64.b64decode,
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "microseconds": lambda micros: timedelta(microseconds=int(micros)),
}


def saved(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, time):
        return {"time": value.isoformat()}
    if isinstance(value, timedelta):
        return {"microseconds": value // timedelta(microseconds=1)}
    return str(value)


def restored_after(position: Mapping[str, Any] | None,
                    size: int) -> tuple[Any, ...] | None:
    after = (position or {}).get("after")
    if after is None:
        return None
    if not isinstance(after, list) or len(after) != size:
        raise InvalidInput(f"the saved position {after!r} does not fit a key of {size} "
                           "column(s): did config.key or the table's primary key change?")
    return tuple(_restored(value) for value in after)


def _restored(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        tag, text = next(iter(value.items()))
        if tag in _RESTORERS:
            return _RESTORERS[tag](text)
    return value
