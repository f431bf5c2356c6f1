"""``tracardi-daemon indices install|status``: install the daemon's templates, indices and
aliases for the configured tenant, or show what exists and what conflicts. In a Tracardi
layout install is refused (Tracardi owns the indices) and status only reads them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import add_config_option, run_with_elastic
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode
from tracardi_daemon.model.indices import KindStatus, install, status
from tracardi_daemon.model.naming import owned_by_tracardi


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("indices", help="install or inspect Tracardi's indices")
    actions = parser.add_subparsers(dest="indices_command", required=True, metavar="ACTION")
    install_parser = actions.add_parser(
        "install", help="create missing templates, indices and aliases; change no mapping")
    add_config_option(install_parser)
    install_parser.set_defaults(handler=_install)
    status_parser = actions.add_parser(
        "status", help="show indices, aliases, what is missing and mapping conflicts")
    add_config_option(status_parser)
    status_parser.set_defaults(handler=_status)


def _install(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(client: Elasticsearch, settings: Settings) -> int:
        report = install(client, settings)
        if report.refused is not None:
            print(f"refused: {report.refused}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        for item in report.installed:
            print(f"installed {item}")
        if not report.installed:
            print("nothing to install: every template, index and alias exists")
        for conflict in report.conflicts:
            print(f"conflict: {conflict}")
        return int(ExitCode.OK if report.ok else ExitCode.FAILURE)

    return run_with_elastic(args, env, action)


def _render_kind(kind: KindStatus) -> list[str]:
    template = f", template {kind.template}" if kind.template else ""
    lines = [f"{kind.kind}: alias {kind.alias}{template}"]
    lines += [f"  index {name}" + (" (in alias)" if name in kind.aliased else "")
              for name in kind.indices]
    lines += [f"  missing: {item}" for item in kind.missing]
    lines += [f"  conflict: {conflict}" for conflict in kind.conflicts]
    return lines


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(client: Elasticsearch, settings: Settings) -> int:
        report = status(client, settings)
        for kind in report.kinds:
            print("\n".join(_render_kind(kind)))
        if owned_by_tracardi(settings.tracardi):
            print(f"layout {settings.tracardi.layout}: Tracardi owns these indices; "
                  "the daemon installs nothing")
            return int(ExitCode.FAILURE if report.missing else ExitCode.OK)
        if report.missing:
            print(f"{len(report.missing)} missing; `tracardi-daemon indices install` adds them")
        if report.conflicts:
            print(f"{len(report.conflicts)} mapping conflict(s); install leaves them unchanged")
            return int(ExitCode.FAILURE)
        return int(ExitCode.OK)

    return run_with_elastic(args, env, action)
