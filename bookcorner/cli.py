"""The ``bookcorner`` command: one entry point, one subcommand per area.

Each area owns its subcommands in its own ``commands.py`` (``register(subparsers)``) and
imports its heavy modules only inside the handlers, so ``bookcorner circ ...`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from i18n import _

# Areas that contribute subcommands, in the order they are listed in --help.
AREAS = ("kiosk.commands", "journal.commands", "devices.commands", "sync.commands", "central.commands")


class UsageError(Exception):
    """A mistake the person at the terminal can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookcorner",
        description=_("Offline-first circulation kiosk for classroom book corners."),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=_("kiosk configuration (TOML); default: $BOOKCORNER_CONFIG or the built-in defaults"),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as missing:
            if missing.name == area:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UsageError as problem:
        print(f"bookcorner: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
