"""How large a definitions file and a definition may be: the file's size, its text's
encoding and nesting, and the charset and length of an id, each refused with an error
that names the file, the place and at most a short prefix of the bad value. The limits
of a TQL condition are in ``tql.limits``; the number of definitions of a kind per tenant
is the setting ``definitions.max_per_kind``."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.tql.limits import short

MAX_FILE_BYTES = 10 * 1024 * 1024
# tables and lists inside one another; a definition's own go a few levels deep
MAX_NESTING = 32
MAX_ID_CHARS = 128
# what Tracardi's ids (UUIDs) and slugs are made of; an id also names an Elasticsearch
# document and appears in log lines and Redis keys, so no slash, space or newline
ID_CHARSET = re.compile(r"[A-Za-z0-9_.:-]+")

# a JSON string (its brackets are text) or one bracket
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a definition id, or None if it can."""
    if not 1 <= len(value) <= MAX_ID_CHARS:
        return f"must have 1 to {MAX_ID_CHARS} characters, {short(value)} has {len(value):,}"
    if not ID_CHARSET.fullmatch(value):
        return (f"may hold only letters, digits and _ . : - (no space, slash or newline), "
                f"got {short(value)}")
    if ".." in value:
        return f"must not contain '..', got {short(value)}"
    return None


def read_document(path: str) -> dict[str, Any]:
    """The ``{kind: [definitions]}`` document of a ``.toml`` or ``.json`` file, within
    the size, encoding and nesting limits; InvalidInput names the file and the place."""
    file = Path(path)
    if file.suffix not in (".toml", ".json"):
        raise InvalidInput(f"{path}: must end in .toml or .json")
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path}: is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB; "
                           "split it into several files")
    text = _decoded(path, data)
    document = _parsed_json(path, text) if file.suffix == ".json" else _parsed_toml(path, text)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: must hold {{kind: [definitions]}} at the top")
    _check_depth(path, document)
    return document


def _decoded(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InvalidInput(f"{path}: is not valid UTF-8 at byte {exc.start} (line {line}, "
                           f"byte {column} of the line): {exc.reason}") from None


def _parsed_json(path: str, text: str) -> Any:
    # the decoder recurses once per level: refuse a deep document before it sees it
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        found = match.group(0)
        if found in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, match.start()) + 1
                raise InvalidInput(f"{path}: line {line}: nested more than {MAX_NESTING} "
                                   "levels deep")
        elif found in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON: {exc}") from exc


def _parsed_toml(path: str, text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        # tomllib recurses once per inline array or table: only a document nested far
        # deeper than MAX_NESTING gets here, and nothing of it was kept
        raise InvalidInput(f"{path}: nested more than {MAX_NESTING} levels deep") from None


def _check_depth(path: str, document: Mapping[str, Any]) -> None:
    """Refuse tables nested deeper than MAX_NESTING (TOML's dotted keys make them without
    brackets); walked without recursion, naming the place as kind[index].key..."""
    # a place is (parent place, key), made into text only for the message
    stack: list[tuple[Any, int, Any]] = [(document, 0, None)]
    while stack:
        value, depth, place = stack.pop()
        if depth > MAX_NESTING:
            raise InvalidInput(f"{path}: {short(_place_text(place))} is nested more than "
                               f"{MAX_NESTING} levels deep")
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1, (place, str(key))) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, depth + 1, (place, index)) for index, item in enumerate(value))


def _place_text(place: Any) -> str:
    parts: list[str] = []
    while place is not None:
        place, key = place
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")
