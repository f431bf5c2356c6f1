"""Imports for the ``upgrade`` role: rows read from a source (a CSV or JSON-lines file, an
Elasticsearch index, a MySQL table or query) and written to events, profiles or
Tracardi's collector, in batches, resumable from a checkpoint."""
