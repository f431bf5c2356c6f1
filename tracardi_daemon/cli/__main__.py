"""``python -m tracardi_daemon.cli``: the command line, as the installed script runs it."""

from tracardi_daemon.cli import entry_point

entry_point()
