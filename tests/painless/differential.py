"""One script on one document, by the interpreter and by the painless node, and whether
they agree: the same document (ints, doubles and booleans told apart, as JSON keeps
them), or both failing with the same exception, or both refusing the script."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from tests.painless.oracle import Failure, PainlessNode
from tracardi_daemon.painless import Script, ScriptFailed, ScriptRefused, compile_script

Document = dict[str, Any]


def tagged(value: Any) -> Any:
    """``value`` with its JSON type made part of it: Python says True == 1 == 1.0, a
    document does not."""
    if isinstance(value, dict):
        return {key: tagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [tagged(item) for item in value]
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int):
        return ("integer", value)
    if isinstance(value, float):
        return ("double", value)
    return value


def exception_word(java_name: str) -> str:
    """NullPointerException -> null_pointer_exception, as the node names it."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", java_name).lower()


def by_interpreter(script: Script | None, document: Document) -> Document | str:
    """The document as the interpreter leaves it (through JSON, as it is written to an
    index), or the failure as ``refused`` (no script) / the node's word for the exception."""
    if script is None:
        return "refused"
    ctx: dict[str, Any] = {"_source": copy.deepcopy(document), "_id": "1",
                           "_index": "differential", "op": "index"}
    try:
        script.run(ctx)
    except ScriptFailed as failed:
        return exception_word(failed.exception)
    result: Document = json.loads(json.dumps(ctx["_source"], allow_nan=False))
    return result


def by_node(node: PainlessNode, source: str, documents: list[Document],
            params: dict[str, Any] | None = None) -> list[Document | str]:
    """The node's results in the same form as by_interpreter's."""
    return ["refused" if isinstance(result, Failure) and result.kind == "compile error"
            else result.exception if isinstance(result, Failure) else result
            for result in node.apply_all(source, documents, params)]


def _shown(result: Document | str) -> str:
    return result if isinstance(result, str) else json.dumps(result, sort_keys=True)


def _same(ours: Document | str, theirs: Document | str) -> bool:
    if isinstance(ours, str) or isinstance(theirs, str):
        return ours == theirs
    return bool(tagged(ours) == tagged(theirs))


def check_agrees(node: PainlessNode, source: str, documents: list[Document],
                 params: dict[str, Any] | None = None,
                 labels: list[str] | None = None) -> None:
    """Fails, showing both sides of every document they disagree on, when the interpreter
    and the node do not leave the same documents (or the same failures)."""
    theirs = by_node(node, source, documents, params)
    try:
        script: Script | None = compile_script(source, "differential", params=params)
    except ScriptRefused:
        script = None
    shown = []
    for number, (document, result) in enumerate(zip(documents, theirs, strict=True)):
        ours = by_interpreter(script, document)
        if not _same(ours, result):
            label = labels[number] if labels else str(number)
            shown.append(f"document {label}: {json.dumps(document, sort_keys=True)}\n"
                         f"  painless:    {_shown(result)}\n  interpreter: {_shown(ours)}")
    assert not shown, (f"the interpreter disagrees with painless on {len(shown)} of "
                       f"{len(documents)} documents\nscript: {source}\n" + "\n".join(shown[:6]))
