"""tracardi-daemon: one supervised process for every Tracardi background worker."""

__version__ = "0.1.0"
