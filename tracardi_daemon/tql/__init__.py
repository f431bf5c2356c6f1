"""TQL, Tracardi's condition language: one parser and type checker, two back ends (a
Python evaluator and an Elasticsearch query compiler) that follow one rule set."""

from tracardi_daemon.tql.condition import Condition, compile_condition, evaluate, to_elastic
from tracardi_daemon.tql.errors import TqlError, TqlSyntaxError
from tracardi_daemon.tql.parser import parse
from tracardi_daemon.tql.schema import FieldType, Kind, Schema

__all__ = [
    "Condition",
    "FieldType",
    "Kind",
    "Schema",
    "TqlError",
    "TqlSyntaxError",
    "compile_condition",
    "evaluate",
    "parse",
    "to_elastic",
]
