"""JSON of an import row parsed with its nesting bounded: a row nested deeper than
``MAX_JSON_DEPTH`` is refused before the parser (or anything after it) recurses into it."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

# objects and arrays inside each other; Elasticsearch maps at most 20 object levels
MAX_JSON_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = str.maketrans({"[": "1", "{": "1", "]": "0", "}": "0"})


class TooDeep(ValueError):
    """The JSON nests deeper than MAX_JSON_DEPTH."""


def bounded_loads(text: str) -> Any:
    """``json.loads(text)``; TooDeep when it nests deeper than MAX_JSON_DEPTH."""
    # few brackets cannot nest deep: the common row pays two counts
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


def _depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (linear, no recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_STEP)
    return max(accumulate(1 if step == "1" else -1 for step in brackets), default=0)
