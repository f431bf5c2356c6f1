"""What command groups share: the --config option and settings/clients for a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any

from redis import Redis

from tracardi_daemon.config import Overrides, load_settings
from tracardi_daemon.errors import ConfigError, ExitCode
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


def run_with_redis(args: argparse.Namespace, env: Mapping[str, str],
                   command: Callable[[Redis[Any], Settings], int]) -> int:
    """Load the settings, open a Redis client for ``command`` and close it afterwards."""
    from tracardi_daemon.infra.redis import create_redis

    settings = settings_for_command(args, env)
    if settings is None:
        return int(ExitCode.CONFIG)
    client = create_redis(settings.redis)
    try:
        return command(client, settings)
    finally:
        client.close()
