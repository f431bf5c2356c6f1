"""Adapters to Redis, Elasticsearch, HTTP targets and the timing wheel."""
