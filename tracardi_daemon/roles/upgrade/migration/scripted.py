"""A painless step's per-document work: the step's script, compiled once per process, run
on each copied document as ``_reindex`` would run it (a pool function like the transforms)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.painless import Script, ScriptFailed, compile_script
from tracardi_daemon.roles.upgrade.migration.transforms import Document, TransformError

# what a script may set ctx.op to, and whether the document is then written
_WRITTEN_BY_OP = {"index": True, "noop": False, "delete": False}


@dataclass(frozen=True)
class ScriptJob:
    """What a worker needs to run a step's script over documents of one source index:
    text, not the compiled closures, so a batch pickles cheaply and compiles once."""

    source: str
    where: str
    index: str


@functools.lru_cache(maxsize=64)
def compiled(source: str, where: str) -> Script:
    """A step's script compiled once per process (a pool worker compiles it once)."""
    return compile_script(source, where)


def failure_reason(failed: ScriptFailed) -> str:
    """A dead letter's reason: where in the script it threw, and what."""
    detail = f": {failed.detail}" if failed.detail else ""
    return f"painless line {failed.line}:{failed.column}: {failed.exception}{detail}"


def run_script_batch(job: ScriptJob, hits: list[tuple[str, Document]]
                     ) -> list[Document | TransformError | None]:
    """Each ``(id, document)`` through the script: the document to write, None when the
    script set ``ctx.op`` to noop or delete (not written), or the TransformError naming
    the script's line:column and exception (that document fails, not the batch)."""
    script = compiled(job.source, job.where)
    return [run_script(script, doc_id, document, job.index) for doc_id, document in hits]


def run_script(script: Script, doc_id: str, document: Document,
               index: str) -> Document | TransformError | None:
    """One document through a compiled script, as ``run_script_batch`` describes."""
    ctx: dict[str, Any] = {"_source": document, "_id": doc_id, "_index": index,
                           "op": "index"}
    try:
        script.run(ctx)
    except ScriptFailed as failed:
        return TransformError(failure_reason(failed))
    return _outcome(ctx)


def _outcome(ctx: dict[str, Any]) -> Document | TransformError | None:
    op = ctx.get("op")
    if op not in _WRITTEN_BY_OP:
        return TransformError(f"the script set ctx.op to {str(op)[:40]!r}; painless allows "
                              f"{', '.join(_WRITTEN_BY_OP)}")
    if not _WRITTEN_BY_OP[op]:
        return None
    source = ctx.get("_source")
    if not isinstance(source, dict):
        return TransformError(f"the script left ctx._source a {type(source).__name__}, "
                              "not a map")
    return source
