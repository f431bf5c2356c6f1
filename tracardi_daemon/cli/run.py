"""``tracardi-daemon run`` (the daemon in the foreground) and ``check-config`` (the
effective configuration, secrets masked)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from tracardi_daemon.cli.common import add_config_option
from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import render_settings
from tracardi_daemon.errors import ConfigError, ExitCode
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.registry import default_registry


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the daemon in the foreground")
    add_config_option(run)
    run.add_argument("--roles", help="comma list of roles (overrides TRACARDI_ROLES)")
    run.add_argument("--health-socket", help="path of the health socket")
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    run.set_defaults(handler=_run)

    check_config = sub.add_parser(
        "check-config", help="print the effective configuration (secrets masked)")
    add_config_option(check_config)
    check_config.set_defaults(handler=_check_config)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    # the process's own modules load only for run: the other commands stay light
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
    daemon = Daemon(settings, getattr(args, "registry", None) or default_registry(),
                    lambda: load_settings(env, overrides), Notifier.from_environ(env))
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
