"""What command groups share: the --config option and settings/clients for a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from elasticsearch import Elasticsearch

from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ConfigError, DaemonError, ExitCode
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.redact import mask_text


class _Closable(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)
_MAX_LIMIT = 100_000  # rows a listing command shows at most


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (or TRACARDI_CONFIG)")


def settings_for_command(args: argparse.Namespace, env: Mapping[str, str]) -> Settings | None:
    """The effective settings, or None after printing the configuration error."""
    try:
        return load_settings(env, Overrides(config=getattr(args, "config", None)))
    except ConfigError as exc:
        print(f"configuration error: {mask_text(str(exc))}", file=sys.stderr)
        return None


def run_with_redis(args: argparse.Namespace, env: Mapping[str, str],
                   command: Callable[[RedisClient, Settings], int]) -> int:
    """Run ``command`` with a Redis client built from the settings."""
    from tracardi_daemon.infra.redis import create_redis

    return _run_with_client(args, env, lambda settings: create_redis(settings.redis), command)


def run_with_elastic(args: argparse.Namespace, env: Mapping[str, str],
                     command: Callable[[Elasticsearch, Settings], int]) -> int:
    """Run ``command`` with an Elasticsearch client built from the settings."""
    from tracardi_daemon.infra.elastic import create_elastic

    return _run_with_client(
        args, env, lambda settings: create_elastic(settings.elastic, patient=True), command)


def printable(text: str) -> str:
    """``text`` safe to print to any stdout: a lone surrogate (stored by another
    producer) becomes a backslash escape instead of a UnicodeEncodeError."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1 to 100000 (``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= _MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {_MAX_LIMIT}")
    return value


def _run_with_client(args: argparse.Namespace, env: Mapping[str, str],
                     connect: Callable[[Settings], ClientT],
                     command: Callable[[ClientT, Settings], int]) -> int:
    """Load settings, connect, run ``command``, close; map the daemon's errors to exit
    codes: 2 configuration, 4 backend unreachable, else the error's own code."""
    settings = settings_for_command(args, env)
    if settings is None:
        return int(ExitCode.CONFIG)
    client = connect(settings)
    try:
        return command(client, settings)
    except DaemonError as exc:
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    finally:
        client.close()


def run_with_backends(args: argparse.Namespace, env: Mapping[str, str],
                      command: Callable[[RedisClient, Elasticsearch, Settings], int]) -> int:
    """Run ``command`` with both a Redis and an Elasticsearch client."""
    from tracardi_daemon.infra.elastic import create_elastic

    def with_redis(redis: RedisClient, settings: Settings) -> int:
        elastic = create_elastic(settings.elastic, patient=True)
        try:
            return command(redis, elastic, settings)
        finally:
            elastic.close()

    return run_with_redis(args, env, with_redis)
