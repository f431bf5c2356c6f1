"""Segmentation's Python entry point under its earlier name: the README documented
``segmentation_client.profile_changed``; the code is in ``roles.segmentation.client``."""

from tracardi_daemon.roles.segmentation.client import profile_changed

__all__ = ["profile_changed"]
