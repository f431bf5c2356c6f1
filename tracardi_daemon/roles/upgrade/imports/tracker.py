"""The ``tracker`` target: each row POSTed to Tracardi's collector,
``<api_url>/collect/<event_type>/<event_source>``, as Tracardi's own importers do — so
that its workflows run — but concurrently within a bound, and with every answer read:
anything but a 2xx is a failed row with the status and the start of the body.

The batch's requests run on an event loop inside the role's own thread (no threads of
the role's making); the loop lives for one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from tracardi_daemon.model.import_spec import ImportSpec
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.upgrade.imports.rows import Row, RowFailure
from tracardi_daemon.roles.upgrade.imports.targets import Failed

_BODY_SHOWN = 200  # characters of an error answer kept in the row's reason


class TrackerTarget:
    def __init__(self, spec: ImportSpec, *, dry_run: bool) -> None:
        self._spec = spec
        self._url = f"{spec.api_url}/collect/{spec.event_type}/{spec.event_source}"
        self._dry_run = dry_run

    @property
    def url(self) -> str:
        return self._url

    def write(self, rows: Sequence[Row]) -> Failed:
        if self._dry_run or not rows:
            return []
        return asyncio.run(self._post_all(rows))

    async def _post_all(self, rows: Sequence[Row]) -> Failed:
        bound = asyncio.Semaphore(self._spec.concurrency)
        limits = httpx.Limits(max_connections=self._spec.concurrency)
        async with httpx.AsyncClient(timeout=self._spec.timeout_s, limits=limits,
                                     follow_redirects=False) as client:
            async def post(row: Row) -> tuple[Row, RowFailure] | None:
                async with bound:
                    return await self._post(client, row)

            answers = await asyncio.gather(*(post(row) for row in rows))
        return [answer for answer in answers if answer is not None]

    async def _post(self, client: httpx.AsyncClient,
                    row: Row) -> tuple[Row, RowFailure] | None:
        try:
            response = await client.post(self._url, json=row.data)
        except httpx.HTTPError as exc:
            return row, RowFailure(mask_text(f"not sent to the collector: "
                                             f"{type(exc).__name__}: {exc}"))
        if 200 <= response.status_code < 300:
            return None
        body = " ".join(response.text[:_BODY_SHOWN].split())
        return row, RowFailure(mask_text(f"the collector answered {response.status_code}"
                                         f"{': ' + body if body else ''}"))

    def close(self) -> None:
        pass
