"""The Elasticsearch back end: a typed plan to query DSL for one document kind, using
plain queries only (term, range, exists, prefix, wildcard, bool), never scripts."""

from __future__ import annotations

from typing import Any

from tracardi_daemon.tql import plan
from tracardi_daemon.tql.coerce import elastic_value
from tracardi_daemon.tql.errors import TqlError
from tracardi_daemon.tql.values import Clock

Query = dict[str, Any]

_RANGE_KEYS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def compile_query(node: plan.Plan, clock: Clock, source: str) -> Query:
    """Query DSL selecting the ``source`` documents (``profile``...) the condition holds for."""
    return _Compiler(clock, source).query(node)


class _Compiler:
    def __init__(self, clock: Clock, source: str) -> None:
        self._clock = clock
        self._source = source

    def query(self, node: plan.Plan) -> Query:
        if isinstance(node, plan.AllOf):
            return {"bool": {"filter": [self.query(operand) for operand in node.operands]}}
        if isinstance(node, plan.AnyOf):
            return {"bool": {"should": [self.query(operand) for operand in node.operands],
                             "minimum_should_match": 1}}
        if isinstance(node, plan.Not):
            return {"bool": {"must_not": [self.query(node.operand)]}}
        if isinstance(node, plan.Constant):
            return {"match_all": {}} if node.value else {"match_none": {}}
        if isinstance(node, plan.HasValue):
            return {"exists": {"field": self._name(node.target)}}
        if isinstance(node, plan.Compare):
            return self._compare(node)
        if isinstance(node, plan.InRange):
            low = elastic_value(node.kind, node.low.resolve(self._clock))
            high = elastic_value(node.kind, node.high.resolve(self._clock))
            return {"range": {self._name(node.target): {"gte": low, "lte": high}}}
        if isinstance(node, plan.Text):
            return self._text(node)
        raise TqlError(f"comparing {node.left.field} with {node.right.field} needs a "
                       "script, which the Elasticsearch back end does not use")

    def _name(self, target: plan.Target) -> str:
        field = target.field
        if field.source != self._source:
            raise TqlError(f"{field} cannot be searched in {self._source} documents; "
                           f"the query can only read {self._source}@ fields")
        return field.dotted

    def _compare(self, node: plan.Compare) -> Query:
        name = self._name(node.target)
        value = elastic_value(node.kind, node.operand.resolve(self._clock))
        if node.op == "==":
            return {"term": {name: {"value": value}}}
        return {"range": {name: {_RANGE_KEYS[node.op]: value}}}

    def _text(self, node: plan.Text) -> Query:
        name = self._name(node.target)
        part: str = node.operand.resolve(self._clock)
        if node.op == "STARTS WITH":
            return {"prefix": {name: {"value": part}}}
        pattern = _escape_wildcard(part)
        pattern = f"*{pattern}*" if node.op == "CONTAINS" else f"*{pattern}"
        return {"wildcard": {name: {"value": pattern}}}


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
