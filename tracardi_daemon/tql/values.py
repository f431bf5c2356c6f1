"""Time in conditions: durations, offsets, ISO 8601 dates and the millisecond instants
both back ends compare."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], datetime]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_EPOCH_ORDINAL = EPOCH.toordinal()

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CALENDAR_UNITS = ("d", "w")
_DURATION = re.compile(r"([+-]?)((?:\d+(?:\.\d+)?[smhdw])+)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")

# The forms of Elasticsearch's default date format (strict_date_optional_time): a year, a
# month or a day, optionally with a time (hour, minutes, seconds, fraction) and an offset;
# the offset needs a time, as in Elasticsearch.
_ISO = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d{1,9}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)
_EPOCH_MILLIS = re.compile(r"-?\d+")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Offset:
    """A signed shift: calendar days (d, w) move the wall clock in the date's zone, the
    rest (s, m, h) is elapsed time."""

    days: float
    seconds: float


def parse_offset(text: str) -> Offset:
    """``"-30d"``, ``"+1h30m"``, ``"2w"``; raises ValueError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like \"-30d\" or \"+1h30m\"")
    sign = -1.0 if match.group(1) == "-" else 1.0
    days = seconds = 0.0
    for amount, unit in _DURATION_PART.findall(match.group(2)):
        if unit in _CALENDAR_UNITS:
            days += float(amount) * _UNIT_SECONDS[unit] / 86400
        else:
            seconds += float(amount) * _UNIT_SECONDS[unit]
    return Offset(sign * days, sign * seconds)


def duration_seconds(text: str) -> float:
    """The length of a duration literal in seconds (a day counts 86400 s)."""
    offset = parse_offset(text)
    return offset.days * 86400 + offset.seconds


def apply_offset(moment: datetime, offset: Offset) -> datetime:
    zone = moment.tzinfo or UTC
    # Python adds a timedelta to an aware datetime on its wall clock, which is what a
    # calendar day means; elapsed seconds are added in UTC so DST cannot stretch them.
    shifted = (moment + timedelta(days=offset.days)).astimezone(UTC)
    return (shifted + timedelta(seconds=offset.seconds)).astimezone(zone)


def zone_named(name: str) -> tzinfo:
    """An IANA zone (``Europe/Warsaw``) or ``UTC``; raises ValueError for unknown names."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_iso(text: str, zone: tzinfo | None = None) -> datetime | None:
    """An aware datetime, or None if ``text`` is not one of the accepted ISO forms.

    Text without an offset is read in ``zone`` (UTC by default), as Elasticsearch reads
    it in UTC.
    """
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    fraction = (parts["fraction"] or "").ljust(6, "0")[:6]
    try:
        moment = datetime(
            int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1),
            int(parts["hour"] or 0), int(parts["minute"] or 0), int(parts["second"] or 0),
            int(fraction), tzinfo=_offset_zone(parts["zone"]) or zone or UTC,
        )
    except ValueError:
        return None
    return moment


def _offset_zone(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    return timezone(timedelta(minutes=_offset_minutes(text)))


def _offset_minutes(text: str) -> int:
    """``Z``, ``+02``, ``+0200`` or ``-02:00`` in minutes; ValueError beyond 18 hours."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 18 or minutes > 59 or hours * 60 + minutes > 18 * 60:
        raise ValueError(f"offset {text} is out of range")
    return -(hours * 60 + minutes) if text[0] == "-" else hours * 60 + minutes


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down: Elasticsearch's ``date`` precision."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MILLISECOND


def iso_millis(text: str) -> int | None:
    """A stored date as Elasticsearch indexes it: ISO text or epoch-millisecond digits.

    The evaluator calls this for every stored date it compares, so it counts milliseconds
    directly instead of building datetime objects.
    """
    match = _ISO.fullmatch(text)
    if match is None:
        return int(text) if _EPOCH_MILLIS.fullmatch(text) else None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        days = date(int(year), int(month or 1), int(day or 1)).toordinal() - _EPOCH_ORDINAL
        shift = _offset_minutes(zone) if zone else 0
    except ValueError:
        return None
    hours, minutes, seconds = int(hour or 0), int(minute or 0), int(second or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    millis = int(fraction[:3].ljust(3, "0")) if fraction else 0
    return ((((days * 24 + hours) * 60 + minutes - shift) * 60 + seconds) * 1000) + millis


def format_millis(millis: int) -> str:
    """``2024-01-31T12:00:00.000Z``: how a compiled query states an instant."""
    moment = EPOCH + timedelta(milliseconds=millis)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")
