"""Painless against a real painless node (``scripts/services painless-up``): the daemon's
handling of Tracardi's painless scripts checked by running the same scripts there."""
