"""``tracardi-daemon license keygen|issue|show``: for operators issuing their own licences
and for tests."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

from tracardi_daemon import license as lic
from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import ROLE_NAMES, LicenseSettings
from tracardi_daemon.errors import ConfigError, ExitCode, LicenseError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("license", help="create keys, issue and inspect licences")
    commands = parser.add_subparsers(dest="license_command", required=True, metavar="ACTION")

    keygen = commands.add_parser("keygen", help="write an Ed25519 key pair")
    keygen.add_argument("--out", required=True, help="directory for the two PEM files")
    keygen.set_defaults(handler=_keygen)

    issue = commands.add_parser("issue", help="sign a licence; the token is the last line")
    issue.add_argument("--key", required=True, help="license-private.pem")
    role_list = ", ".join(ROLE_NAMES)
    issue.add_argument("--roles", required=True, help=f"comma list or 'all' ({role_list})")
    issue.add_argument("--days", type=float, default=365.0, help="validity in days")
    issue.add_argument("--licensee", default=None, help="who the licence is for")
    issue.set_defaults(handler=_issue)

    show = commands.add_parser("show", help="decode a licence and verify it if a key is set")
    show.add_argument("token", nargs="?", help="token (default: the configured licence)")
    show.add_argument("--config", help="TOML configuration file (or TRACARDI_CONFIG)")
    show.set_defaults(handler=_show)


def _keygen(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    private_path, public_path = lic.generate_keypair(args.out)
    print(f"private key: {private_path} (keep it secret; it signs licences)")
    print(f"public key:  {public_path} (set license.public_key_file to this)")
    return int(ExitCode.OK)


def _issue(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    requested = [r.strip() for r in args.roles.split(",") if r.strip()]
    roles = tuple(ROLE_NAMES) if requested == ["all"] else tuple(requested)
    licensee = args.licensee or f"{getpass.getuser()}@{socket.gethostname()}"
    try:
        key = lic.load_private_key(args.key)
        token = lic.issue(key, licensee, roles, args.days, datetime.now(UTC))
    except LicenseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(ExitCode.LICENSE)
    expires = lic.decode_unverified(token).expires.isoformat()
    print(f"licence for {licensee}, roles {', '.join(roles)}, expires {expires}:")
    print(token)
    return int(ExitCode.OK)


def _show(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    try:
        settings = load_settings(env, Overrides(config=args.config)).license
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    if args.token:
        settings = LicenseSettings(token=args.token, public_key_file=settings.public_key_file)
    try:
        token = lic.configured_token(settings)
        if token is None:
            print("no licence configured (TRACARDI_DAEMON_LICENSE, LICENSE, API_LICENSE or "
                  "license.file)")
            return int(ExitCode.LICENSE)
        licence = lic.decode_unverified(token)
    except LicenseError as exc:
        print(f"invalid: {exc}")
        return int(ExitCode.LICENSE)
    print(f"licensee: {licence.licensee}\nissued:   {licence.issued.isoformat()}\n"
          f"expires:  {licence.expires.isoformat()}\nroles:    {', '.join(licence.roles)}\n"
          f"key id:   {licence.key_id}")
    status = lic.load_status(settings, datetime.now(UTC))
    print("status:   " + ("valid" if status.valid else f"NOT VALID: {status.detail}"))
    return int(ExitCode.OK if status.valid else ExitCode.LICENSE)
