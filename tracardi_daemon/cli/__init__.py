"""The ``tracardi-daemon`` command: run, status, check, check-config, license, ..."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from tracardi_daemon import __version__
from tracardi_daemon.cli import license as license_commands
from tracardi_daemon.config.env import env_value
from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import DaemonSettings, render_settings
from tracardi_daemon.errors import ConfigError, DaemonError, ExitCode
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.registry import Registry, default_registry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracardi-daemon",
        description="Runs Tracardi's background workers in one supervised process.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    _add_config_options(run)
    run.add_argument("--roles", help="comma list of roles (overrides TRACARDI_ROLES)")
    run.add_argument("--health-socket", help="path of the health socket")
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")

    check_config = sub.add_parser(
        "check-config", help="print the effective configuration (secrets masked)")
    _add_config_options(check_config)

    status = sub.add_parser("status", help="show the running daemon's health as a table")
    _add_socket_options(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON report")
    check = sub.add_parser("check", help="exit 0 if the daemon is healthy, else 1")
    _add_socket_options(check)

    license_commands.add_commands(sub)
    for module_name in _OPTIONAL_COMMAND_MODULES:
        _add_optional_commands(sub, module_name)
    return parser


# command groups that live beside the code they drive
_OPTIONAL_COMMAND_MODULES = (
    "tracardi_daemon.cli.tql",
    "tracardi_daemon.cli.dead",
    "tracardi_daemon.cli.indices",
    "tracardi_daemon.cli.definitions",
    "tracardi_daemon.cli.schedule",
    "tracardi_daemon.cli.mapping",
    "tracardi_daemon.cli.segmentation",
    "tracardi_daemon.cli.triggers",
    "tracardi_daemon.cli.migrate",
    "tracardi_daemon.cli.imports",
)


def _add_optional_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                           module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)
    module.add_commands(sub)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (or TRACARDI_CONFIG)")


def _add_socket_options(parser: argparse.ArgumentParser) -> None:
    _add_config_options(parser)
    parser.add_argument("--socket", help="health socket path (or TRACARDI_HEALTH_SOCKET)")


def main(argv: Sequence[str] | None = None, registry: Registry | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args, registry or default_registry(), env)
    if args.command == "check-config":
        return _check_config(args, env)
    if args.command in ("status", "check"):
        return _health_command(args, env)
    handler = getattr(args, "handler", None)
    if handler is None:  # pragma: no cover - argparse requires a command
        return int(ExitCode.FAILURE)
    try:
        result: int = handler(args, env)
    except DaemonError as exc:  # one a command group did not turn into its exit code
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    return result


def _run(args: argparse.Namespace, registry: Registry, env: Mapping[str, str]) -> int:
    from tracardi_daemon.runtime.daemon import Daemon
    from tracardi_daemon.runtime.logs import setup_logging
    from tracardi_daemon.runtime.systemd import Notifier

    overrides = Overrides(config=args.config, roles=args.roles,
                          health_socket=args.health_socket, log_level=args.log_level)
    try:
        settings = load_settings(env, overrides)
    except ConfigError as exc:
        print(f"tracardi-daemon: configuration error: {mask_text(str(exc))}",
              file=sys.stderr)
        return int(ExitCode.CONFIG)
    setup_logging(settings.log)
    daemon = Daemon(settings, registry, lambda: load_settings(env, overrides),
                    Notifier.from_environ(env))
    return daemon.run()


def _check_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    try:
        settings = load_settings(env, Overrides(config=args.config))
    except ConfigError as exc:
        print(f"configuration error: {mask_text(str(exc))}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    # render_settings masks the secret fields; mask_text also the user info of URLs
    # (elastic.hosts, tracardi.api_url) and anything secret-named
    print(mask_text(render_settings(settings)), end="")
    return int(ExitCode.OK)


def health_socket_path(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--socket, else TRACARDI_HEALTH_SOCKET, else the config file's, else the default."""
    if args.socket:
        return str(args.socket)
    try:
        return load_settings(env, Overrides(config=args.config)).daemon.health_socket
    except ConfigError:
        return env_value(env, "TRACARDI_HEALTH_SOCKET") or DaemonSettings().health_socket


def _health_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tracardi_daemon.cli.health import cmd_check, cmd_status

    path = health_socket_path(args, env)
    if args.command == "check":
        return cmd_check(path)
    return cmd_status(path, args.json)


def entry_point() -> None:
    sys.exit(main())
