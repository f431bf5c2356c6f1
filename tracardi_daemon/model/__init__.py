"""Tracardi index naming and document models."""
