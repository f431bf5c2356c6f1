"""``tracardi-daemon definitions apply|list|show|delete``: manage segments, mappings,
triggers, imports and tasks from TOML or JSON files."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from elasticsearch import Elasticsearch

from tracardi_daemon.cli.common import (
    add_config_option,
    run_with_elastic,
    settings_for_command,
)
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ExitCode, InvalidInput
from tracardi_daemon.model.definition_limits import read_document
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import (
    DEFINITION_TYPES,
    Definition,
    check_counts,
    definition_type,
    parse_definitions,
)
from tracardi_daemon.model.indices import install
from tracardi_daemon.redact import mask_json


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("definitions", help="apply, list, show or delete definitions")
    actions = parser.add_subparsers(dest="definitions_command", required=True,
                                    metavar="ACTION")
    kinds = ", ".join(DEFINITION_TYPES)

    apply = actions.add_parser("apply", help="validate every definition of a TOML or JSON "
                                             "file, then write them all (or none)")
    apply.add_argument("file", help="e.g. [[segment]] tables in TOML, {\"segment\": [...]}")
    add_config_option(apply)
    apply.set_defaults(handler=_apply)
    listing = actions.add_parser("list", help="list definitions, of one kind or all")
    listing.add_argument("kind", nargs="?", type=_kind_argument, help=kinds)
    add_config_option(listing)
    listing.set_defaults(handler=_list)
    for name, handler, help_text in (("show", _show, "print one definition as JSON"),
                                     ("delete", _delete, "delete one definition")):
        command = actions.add_parser(name, help=help_text)
        command.add_argument("kind", type=_kind_argument, help=kinds)
        command.add_argument("id")
        add_config_option(command)
        command.set_defaults(handler=handler)


def _kind_argument(text: str) -> str:
    try:
        return definition_type(text).kind
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def load_definitions_file(path: str, max_per_kind: int | None = None) -> list[Definition]:
    """Every definition in a ``.toml`` or ``.json`` file, all validated; InvalidInput
    names the file, and each bad definition's kind, id and field. The file's size and
    nesting are bounded (``definition_limits``), and with ``max_per_kind`` the number of
    definitions of each kind, counted before any is parsed."""
    document = read_document(path)
    try:
        if max_per_kind is not None:
            check_counts(document, max_per_kind)
        return parse_definitions(document)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}:\n{exc}") from exc


def _apply(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    file_settings = settings_for_command(args, env)
    if file_settings is None:
        return int(ExitCode.CONFIG)
    # validated before connecting: a bad file touches nothing
    try:
        definitions = load_definitions_file(args.file,
                                            file_settings.definitions.max_per_kind)
    except InvalidInput as exc:
        print(f"nothing applied: {exc}", file=sys.stderr)
        return int(ExitCode.FAILURE)

    def action(client: Elasticsearch, settings: Settings) -> int:
        store = DefinitionStore(client, settings)
        # refused before installing: Tracardi's definitions are not the daemon's to write
        store.check_writable(definitions)
        store.check_room(definitions, settings.definitions.max_per_kind)
        # the indices may not exist before the daemon's first start
        report = install(client, settings)
        for item in report.installed:
            print(f"installed {item}")
        for conflict in report.conflicts:
            print(f"warning: mapping conflict: {conflict}", file=sys.stderr)
        written = store.upsert_many(definitions)
        print(f"applied {written} definition(s) from {args.file}")
        return int(ExitCode.OK)

    return run_with_elastic(args, env, action)


def _list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(client: Elasticsearch, settings: Settings) -> int:
        store = DefinitionStore(client, settings)
        # beside Tracardi, SOURCE tells Tracardi's indices from the daemon's own; in the
        # daemon's layout every definition is the daemon's and the output stays as it was
        with_source = settings.tracardi.layout != "daemon"
        rows = [("KIND", "ID", "SOURCE", "NAME")]
        for kind in [args.kind] if args.kind else list(DEFINITION_TYPES):
            source = store.source(kind).location
            rows += [(kind, item.id, source, item.name) for item in store.list(kind)]
        columns = (0, 1, 2, 3) if with_source else (0, 1, 3)
        widths = [max(len(row[column]) for row in rows) for column in columns[:-1]]
        for row in rows:
            cells = [row[column] for column in columns]
            padded = [f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=False)]
            print("  ".join([*padded, cells[-1]]))
        return int(ExitCode.OK)

    return run_with_elastic(args, env, action)


def _show(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(client: Elasticsearch, settings: Settings) -> int:
        found = DefinitionStore(client, settings).get(args.kind, args.id)
        if found is None:
            print(f"no {args.kind} {args.id!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        # credentials (an import's password, a webhook URL's token) are never shown
        print(json.dumps(mask_json(found.to_dict()), indent=2, ensure_ascii=False))
        return int(ExitCode.OK)

    return run_with_elastic(args, env, action)


def _delete(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    def action(client: Elasticsearch, settings: Settings) -> int:
        if not DefinitionStore(client, settings).delete(args.kind, args.id):
            print(f"no {args.kind} {args.id!r}", file=sys.stderr)
            return int(ExitCode.FAILURE)
        print(f"deleted {args.kind} {args.id!r}")
        return int(ExitCode.OK)

    return run_with_elastic(args, env, action)
