"""The ``bookcorner`` command: one entry point, one subcommand per area.

Each area owns its subcommands in its own ``commands.py`` (``register(subparsers)``) and
imports its heavy modules only inside the handlers, so ``bookcorner circ ...`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from bookcorner.i18n import _

# Areas that contribute subcommands, in the order they are listed in --help.
AREAS = ("kiosk.commands", "journal.commands", "devices.commands", "sync.commands", "central.commands",
         "ops.commands")


#: commands whose start-up time matters (the kiosk's screen, after every power cut): to
#: parse them, only their own area's subcommands are loaded
QUICK = {"kiosk": "kiosk.commands"}


EXIT_USAGE = 2


def fail(message: str, code: int, program: str = "bookcorner") -> NoReturn:
    """Tell the person at the terminal what went wrong, without a traceback, and exit."""
    print(f"{program}: {message}", file=sys.stderr)
    raise SystemExit(code)


def load_settings(args: argparse.Namespace):
    """The configuration a command runs with (a wrong one exits 2 naming the option), and
    its language (``--lang`` where the command has it)."""
    from bookcorner import config, i18n

    try:
        settings = config.load(args.config)
    except config.ConfigError as error:
        fail(str(error), EXIT_USAGE)
    i18n.use_language(getattr(args, "lang", None) or settings.kiosk.language)
    return settings


class UsageError(Exception):
    """A mistake the person at the terminal can fix; printed without a traceback."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
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
        if only is not None and area != only:
            continue
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as missing:
            if missing.name == area:
                continue
            raise
        module.register(subparsers)
    return parser


def _quick_area(argv: Sequence[str]) -> str | None:
    """The area of a QUICK command, if that is what the command line asks for."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("--config="):
            return None if word.startswith("-") else QUICK.get(word)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_quick_area(words))
    args = parser.parse_args(words)
    try:
        return int(args.handler(args) or 0)
    except UsageError as problem:
        print(f"bookcorner: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
