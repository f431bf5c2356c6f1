"""What command groups share: the --config option and settings/clients for a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from tracardi_daemon.config import Overrides, load_settings
from tracardi_daemon.errors import ConfigError
from tracardi_daemon.settings import Settings


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (or TRACARDI_CONFIG)")


def settings_for_command(args: argparse.Namespace, env: Mapping[str, str]) -> Settings | None:
    """The effective settings, or None after printing the configuration error."""
    try:
        return load_settings(env, Overrides(config=getattr(args, "config", None)))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return None
