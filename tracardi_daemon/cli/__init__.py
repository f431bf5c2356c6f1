"""The ``tracardi-daemon`` command: one parser made of the command modules of this
package (one module per command word), and one dispatch: every command sets its
``handler(args, env)``, which returns the exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from tracardi_daemon import __version__
from tracardi_daemon.cli import (
    dead,
    definitions,
    health,
    imports,
    indices,
    license,
    mapping,
    migrate,
    run,
    schedule,
    segmentation,
    tql,
    triggers,
)
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.registry import Registry

# in the order of the help text
COMMAND_MODULES = (run, health, license, tql, dead, indices, definitions, schedule,
                   mapping, segmentation, triggers, migrate, imports)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracardi-daemon",
        description="Runs Tracardi's background workers in one supervised process.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, registry: Registry | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    args.registry = registry  # the roles ``run`` may start (tests pass their own)
    try:
        result: int = args.handler(args, env)
    except DaemonError as exc:  # one a command did not turn into its exit code
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    return result


def entry_point() -> None:
    sys.exit(main())
