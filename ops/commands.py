"""``bookcorner udev-rules``, ``doctor``, ``backup`` and ``restore``: running a kiosk.

Exit codes: 0 done (doctor: nothing wrong), 1 doctor found a problem, 2 a usage or
configuration mistake, 3 the data could not be read or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from i18n import _

EXIT_DONE, EXIT_PROBLEM, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("udev-rules", help=_("print (or write) the udev rules that give the configured "
                                                       "scanner and reader stable names and the kiosk user access"))
    rules.add_argument("--reader-usb", metavar="VENDOR:PRODUCT",
                       help=_("the USB ids of a USB-serial card reader, as lsusb shows them, e.g. 10c4:ea60"))
    rules.add_argument("--user", default="bookcorner", help=_("the kiosk's user (default: bookcorner)"))
    rules.add_argument("--output", metavar="FILE", help=_("write the rules to this file instead of printing them"))
    rules.set_defaults(handler=_udev_rules)


def _fail(message: str, code: int) -> None:
    print(f"bookcorner: {message}", file=sys.stderr)
    raise SystemExit(code)


def _settings(args: argparse.Namespace):
    import config
    import i18n

    try:
        settings = config.load(args.config)
    except config.ConfigError as error:
        _fail(str(error), EXIT_USAGE)
    i18n.use_language(settings.kiosk.language)
    return settings


def _udev_rules(args: argparse.Namespace) -> int:
    from ops.udev import devices_from_config, render_rules

    settings = _settings(args)
    try:
        inputs, serial = devices_from_config(settings.devices, args.reader_usb)
    except ValueError as error:
        _fail(str(error), EXIT_USAGE)
    text = render_rules(inputs, serial, args.user)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_DONE
