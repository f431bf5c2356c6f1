"""The checks of a file import's settings: the config table of a ``csv`` or ``jsonl`` import
and the encoding, quote, delimiter and record length the file sources are given."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.columns import compile_columns

_CSV_ONLY_KEYS = ("delimiter", "quote", "infer", "max_record_lines")


@dataclass(frozen=True)
class FileConfig:
    """The checked config of a file import; a ``jsonl`` one keeps the csv defaults."""

    kind: str
    path: Path
    encoding: str
    columns: Mapping[str, str] | None
    delimiter: str = ","
    quote: str = '"'
    infer: bool = True
    max_record_lines: int = 100


def checked_file_config(kind: str, config: Mapping[str, Any]) -> FileConfig:
    """The config table of a ``csv`` or ``jsonl`` import checked; an invalid value is an
    ``InvalidInput`` naming its key. Keys of other parts of the import are left."""
    if kind not in ("csv", "jsonl"):
        raise InvalidInput(f"unknown file kind {kind!r}; expected csv or jsonl")
    path = config.get("path")
    if path is None:
        raise InvalidInput("config.path is required: the file to import")
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"config.path must be the path of a file, not {path!r}")
    encoding = checked_encoding(config.get("encoding", "utf-8"), "config.encoding")
    columns = config.get("columns")
    if columns is not None and not isinstance(columns, Mapping):
        raise InvalidInput(f"config.columns must be a table of column name -> type, "
                           f"not {columns!r}")
    compile_columns(columns, "config.columns")
    if kind == "jsonl":
        for key in _CSV_ONLY_KEYS:
            if key in config:
                raise InvalidInput(f"config.{key} applies to csv files, not jsonl")
        return FileConfig(kind, Path(path), encoding, columns)
    delimiter = config.get("delimiter", ",")
    quote = config.get("quote", '"')
    checked_quote(quote, delimiter, encoding, "config.quote", "config.delimiter")
    infer = config.get("infer", True)
    if not isinstance(infer, bool):
        raise InvalidInput(f"config.infer must be true or false, not {infer!r}")
    max_record_lines = checked_max_record_lines(config.get("max_record_lines", 100),
                                                "config.max_record_lines")
    return FileConfig(kind, Path(path), encoding, columns, delimiter, quote, infer,
                      max_record_lines)


def checked_encoding(encoding: Any, key: str) -> str:
    if not isinstance(encoding, str):
        raise InvalidInput(f"{key} must be the name of an encoding, not {encoding!r}")
    try:
        codecs.lookup(encoding)
        ascii_kept = '\n,"a'.encode(encoding) == b'\n,"a'
    except (LookupError, UnicodeError):
        raise InvalidInput(f"{key}: unknown encoding {encoding!r}") from None
    if not ascii_kept:
        # lines are split on the byte \n: the encoding must write ASCII as ASCII
        raise InvalidInput(f"{key}: encoding {encoding!r} is not supported (it does not "
                           "write ASCII as single bytes); convert the file to utf-8")
    return encoding


def checked_quote(quote: Any, delimiter: Any, encoding: str, quote_key: str,
                  delimiter_key: str) -> bytes:
    """The quote character encoded, once both characters are checked."""
    for key, value in ((delimiter_key, delimiter), (quote_key, quote)):
        if not isinstance(value, str) or len(value) != 1:
            raise InvalidInput(f"{key} must be one character, not {value!r}")
        if value in "\r\n":
            raise InvalidInput(f"{key} cannot be a line break")
    if quote == delimiter:
        raise InvalidInput(f"{quote_key} and {delimiter_key} must differ, both are {quote!r}")
    try:
        encoded = str(quote).encode(encoding)
    except UnicodeEncodeError:
        encoded = b""
    if len(encoded) != 1:
        raise InvalidInput(f"{quote_key} {quote!r} is not one byte in {encoding}")
    return encoded


def checked_max_record_lines(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{key} must be a whole number of at least 1, not {value!r}")
    return value
