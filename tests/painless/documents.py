"""Documents to feed a painless script and its rival: hand-written ones per Tracardi index
shape, and a Hypothesis strategy of such documents with nulls, missing maps, empty
strings, lists and wrong types at the paths Tracardi's scripts touch.

A shape is a tree of the paths a script reads or writes (``LEAF`` ends a path); the
strategy draws, at every node, whether it is missing, null, a scalar, a list or a map
(whose children are drawn the same way), beside a few unrelated keys.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Document = dict[str, Any]
Shape = dict[str, "Shape | None"]
LEAF = None

PROFILE: Shape = {
    "id": LEAF, "metadata": {"time": {"insert": LEAF}},
    "data": {"anonymous": LEAF,
             "pii": {"name": LEAF, "surname": LEAF, "display_name": LEAF},
             "contact": {"email": {"main": LEAF}, "phone": LEAF},
             "devices": {"names": LEAF, "other": LEAF}},
    "traits": LEAF,
}
EVENT: Shape = {
    "id": LEAF, "type": LEAF, "mapping": LEAF,
    "data": {"contact": {"email": LEAF, "phone": {"main": LEAF}},
             "ec": {"order": {"cost": {"other": LEAF, "discount": LEAF, "tax": LEAF,
                                       "shipping": LEAF, "total": LEAF},
                              "income": {"revenue": LEAF, "value": LEAF}}}},
    "properties": LEAF,
}
SESSION: Shape = {"id": LEAF, "timestamp": LEAF, "profile": {"id": LEAF},
                  "metadata": {"time": {"insert": LEAF}}, "context": LEAF}
USER: Shape = {"id": LEAF, "email": LEAF, "password": LEAF, "token": LEAF,
               "roles": LEAF, "disabled": LEAF}
ENTITY: Shape = {"id": LEAF, "timestamp": LEAF, "type": LEAF, "properties": LEAF}
EVENT_RESHAPING: Shape = {"id": LEAF, "name": LEAF, "mapping": LEAF, "reshaping": LEAF}
SHAPES: dict[str, Shape] = {"profile": PROFILE, "event": EVENT, "session": SESSION,
                            "user": USER, "entity": ENTITY, "event-reshaping": EVENT_RESHAPING}

# JSON scalars as a search node keeps them: integers within a long, finite doubles
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**31), 2**31 - 1),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.just(""), st.text(max_size=12))
# plain names: a search node refuses some field names (empty, only dots)
KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
PLAIN = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=6)

_MISSING = object()


def _node(shape: Shape | None) -> st.SearchStrategy[Any]:
    """A value for one node of ``shape``: missing (``_MISSING``), null, a scalar, a list,
    or (for an inner node, most often) a map of its children."""
    if shape is None:
        return st.one_of(st.just(_MISSING), SCALARS, st.lists(SCALARS, max_size=3), PLAIN)
    return st.one_of(st.just(_MISSING), st.none(), st.just(""), st.lists(SCALARS, max_size=2),
                     _mapping(shape), _mapping(shape), _mapping(shape))


def _mapping(shape: Shape) -> st.SearchStrategy[Document]:
    children = {key: _node(child) for key, child in shape.items()}

    def build(drawn: dict[str, Any], extra: dict[str, Any]) -> Document:
        result = {key: value for key, value in extra.items() if key not in shape}
        result.update({key: value for key, value in drawn.items() if value is not _MISSING})
        return result

    return st.builds(build, st.fixed_dictionaries(children),
                     st.dictionaries(KEYS, PLAIN, max_size=2))


def documents(shape: Shape) -> st.SearchStrategy[Document]:
    """Documents of ``shape``: the root is always a map."""
    return _mapping(shape)


def any_documents() -> st.SearchStrategy[Document]:
    """Documents of any of the shapes."""
    return st.one_of(*(documents(shape) for shape in SHAPES.values()))
