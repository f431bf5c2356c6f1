"""What every definition kind is built on: the field reader whose errors name kind, id
and field, the ``Definition`` base class, references and the JSON-ready form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn, Self

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_limits import id_problem
from tracardi_daemon.tql.limits import prefix, short

# a dotted path such as "properties.email" or "data.contact.email.main"
PATH = re.compile(r"^[^\s.]+(\.[^\s.]+)*$")


class Reader:
    """Reads the fields of one raw definition; every error names kind, id and field.

    ``strict`` is for files a person wrote: there an unknown field is a typo, so an
    error; documents read back from Elasticsearch may carry Tracardi's own extras.
    """

    def __init__(self, kind: str, data: object, *, strict: bool = False) -> None:
        self.kind = kind
        self.strict = strict
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"{kind}: a definition must be a table/object, got {type(data).__name__}"
            )
        self.data: Mapping[str, Any] = data
        raw_id = data.get("id")
        self.id = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
        self.read: set[str] = set()

    def fail(self, field: str, problem: str) -> NoReturn:
        who = f"{self.kind} {short(self.id)}" if self.id else f"{self.kind} (without id)"
        raise InvalidInput(f"{who}: field '{prefix(field)}' {problem}")

    def check_id(self) -> None:
        """Refuse an id outside the charset and length of ``definition_limits`` (files
        only: what Tracardi stored is Tracardi's to name)."""
        if self.id is not None:
            problem = id_problem(self.id)
            if problem is not None:
                raise InvalidInput(f"{self.kind}: field 'id' {problem}")

    def _get(self, field: str) -> Any:
        self.read.add(field)
        return self.data.get(field)

    def ignore(self, *names: str) -> None:
        """Accept fields Tracardi writes that mean nothing to the daemon."""
        self.read.update(names)

    def string(self, field: str) -> str:
        value = self._get(field)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
        return value

    def optional_string(self, field: str, default: str = "") -> str:
        value = self._get(field)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(field, "must be a string")
        return value

    def boolean(self, field: str, default: bool) -> bool:
        value = self._get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
        return value

    def choice(self, field: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self._get(field)
        if value is None and default is not None:
            return default
        if value not in options:
            self.fail(field, f"must be one of {', '.join(options)}, got {short(value)}")
        return str(value)

    def string_list(self, field: str) -> tuple[str, ...]:
        value = self._get(field)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item.strip() for item in value
        ):
            self.fail(field, "must be a list of non-empty strings")
        return tuple(value)

    def ref(self, field: str) -> Ref:
        value = self._get(field)
        if (
            not isinstance(value, Mapping)
            or not isinstance(value.get("id"), str)
            or not value["id"].strip()
            or not isinstance(value.get("name", ""), str)
        ):
            self.fail(
                field, "must be a table/object with a non-empty string 'id' and a string 'name'"
            )
        return Ref(id=value["id"], name=value.get("name", ""))

    def optional_ref(self, field: str) -> Ref | None:
        return None if self.data.get(field) is None else self.ref(field)

    def table(self, field: str) -> dict[str, Any]:
        value = self._get(field)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(field, "must be a table/object")
        return dict(value)

    def number(self, field: str, default: float, low: float, high: float) -> float:
        value = self._get(field)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self.fail(field, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def timestamp(self, field: str) -> datetime:
        value = self._get(field)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.fail(field, f"must be an ISO 8601 date and time, got {short(value)}")
        if not isinstance(value, datetime):
            self.fail(field, "must be an ISO 8601 date and time")
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def check_keys(self, where: str, table: Mapping[str, Any], known: set[str]) -> None:
        """In strict mode, refuse the first unknown key of a nested table."""
        unknown = sorted(set(table) - known)
        if self.strict and unknown:
            self.fail(f"{where}.{unknown[0]}", "is not a known field")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read - {"id"})
        if self.strict and unknown:
            self.fail(unknown[0], "is not a known field")


def plain(value: Any) -> Any:
    """JSON-ready form: dataclasses to dicts (None fields left out), tuples to lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Ref:
    """A reference to another object by id, with its name for people."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class Definition:
    """What every definition has; ``kind`` is also the index kind it is stored in."""

    kind: ClassVar[str] = ""
    id: str
    name: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> Self:
        """Validate ``data``; InvalidInput names the kind, the id and the bad field."""
        reader = Reader(cls.kind, data, strict=strict)
        if strict:
            reader.check_id()
        definition = cls._read(reader)
        reader.finish()
        return definition

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = plain(self)
        return result
