"""What every import source yields: rows with their number, their key in the source and
their values — or the reason they could not be read — and a position to resume from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# the raw text of a row kept for ``import failures`` is cut to this many characters
RAW_LIMIT = 2000


@dataclass(frozen=True)
class RowFailure:
    """Why a row was not imported; ``column`` names the column at fault, when one is."""

    reason: str
    column: str | None = None


@dataclass(frozen=True)
class Row:
    """One row of a source.

    ``number`` is what the user looks for: the line a CSV record or a JSON line starts on
    (the header is line 1), the 1-based position of a document or a database row.
    ``key`` is the row's identity in the source (an id, a primary key, else the number):
    deterministic ids derive from it, so a re-run writes the same documents.
    ``data`` holds the typed values; None when ``failure`` says why there are none.
    """

    number: int
    key: str
    data: dict[str, Any] | None
    raw: str
    failure: RowFailure | None = None


def cut_raw(raw: str) -> str:
    return raw if len(raw) <= RAW_LIMIT else raw[:RAW_LIMIT] + "…"


class Source(Protocol):
    """Rows in a stable order, read batch by batch with constant memory.

    ``position`` is JSON (it goes into the task's checkpoint): a source opened again with
    it goes on with the row after the last one ``read`` returned. Errors of the backend
    (file missing, connection refused, query refused) raise ``DaemonError`` subclasses
    naming what failed; a row that cannot be read is a ``Row`` with a ``failure``.
    """

    def total(self) -> int | None:
        """The number of rows in all, when it can be known cheaply (for progress)."""
        ...

    def read(self, limit: int) -> list[Row]:
        """Up to ``limit`` next rows; [] at the end."""
        ...

    @property
    def position(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
