"""The ``definitions`` commands run in-process, as a user types them."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracardi_daemon.cli import definitions as definition_commands


def run_cli(config: Path, *argv: str) -> int:
    """``tracardi-daemon <argv> --config <config>``; its exit code."""
    parser = argparse.ArgumentParser(prog="tracardi-daemon")
    definition_commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([*argv, "--config", str(config)])
    result: int = args.handler(args, {})
    return result
