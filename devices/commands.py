"""``bookcorner devices ...``: field diagnostics a technician runs on the Pi."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bookcorner.i18n import N_, _

STATE_NAMES = {
    "connected": N_("connected"),
    "disconnected": N_("disconnected"),
    "warning": N_("warning"),
    "error": N_("error"),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("devices", help=_("input devices: list, watch, decode captures"),
                                   description=_("Barcode scanners and card readers: find them, watch them, decode captures for bug reports."))
    commands = parser.add_subparsers(dest="devices_command", metavar="ACTION")
    commands.required = True

    listing = commands.add_parser("list", help=_("input devices and serial ports found, and which ones the configuration selects"))
    listing.set_defaults(handler=_list)

    watch = commands.add_parser("watch", help=_("show scans, card taps and device changes as they happen (Ctrl+C stops)"))
    watch.add_argument("--duration", type=float, metavar="SECONDS", help=_("stop after this many seconds"))
    watch.add_argument("--verbose", action="store_true", help=_("also show every rejected card reader frame"))
    watch.set_defaults(handler=_watch)

    scanner = commands.add_parser("replay-scanner", help=_("decode a raw scanner capture (cat /dev/input/eventN > FILE)"))
    scanner.add_argument("file", metavar="FILE")
    scanner.add_argument("--max-gap-ms", type=int, metavar="MS", help=_("longest gap between the keys of one scan (default: from the configuration)"))
    scanner.add_argument("--record-size", type=int, choices=(16, 24), help=_("bytes per event record: 24 on 64-bit systems, 16 on 32-bit (default: detected)"))
    scanner.set_defaults(handler=_replay_scanner)

    reader = commands.add_parser("replay-reader", help=_("decode a raw serial capture of a card reader"))
    reader.add_argument("file", metavar="FILE")
    reader.add_argument("--protocol", required=True, choices=("rdm6300", "id12", "ascii", "pn532"))
    reader.add_argument("--card-id-format", choices=("decimal10", "hex"), help=_("how to write EM4100 card ids (default: from the configuration)"))
    reader.add_argument("--ascii-format", choices=("em4100-decimal", "em4100-hex", "uid-hex"), help=_("what an ASCII reader's lines hold (default: from the configuration)"))
    reader.set_defaults(handler=_replay_reader)


def _config(args: argparse.Namespace) -> Any:
    from bookcorner import config

    return config.load(args.config).devices


def _fail(message: str, code: int = 1) -> int:
    print(f"bookcorner devices: {message}", file=sys.stderr)
    return code


def _loaded(args: argparse.Namespace) -> tuple[Any, int]:
    from bookcorner import config

    try:
        return _config(args), 0
    except config.ConfigError as error:
        return None, _fail(str(error), 2)


# -- list ---------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    from bookcorner.devices.discovery import list_input_devices, list_serial_ports, matches, serial_port_problem
    from bookcorner.devices.evdev_reader import describe_match

    devices, failed = _loaded(args)
    if devices is None:
        return failed
    trouble: list[str] = []

    print(_("Input devices:"))
    found = list_input_devices()
    if not found:
        print("  " + _("none (no /dev/input/event* devices)"))
    for device in found:
        roles = [label for label, match in ((_("selected as scanner"), devices.scanner), (_("selected as card reader"), devices.card_keyboard)) if matches(device, match)]
        kind = _("keyboard") if device.is_keyboard else ""
        ids = f"{device.vendor}:{device.product}" if device.vendor else ""
        print("  " + "  ".join(part for part in (device.path, repr(device.name) if device.name else "", ids, kind, *[f"[{r}]" for r in roles]) if part))
        for link in device.by_id:
            print("      " + link)
        if device.problem is not None:
            print("      " + device.problem.text())

    print(_("Serial ports:"))
    ports = list_serial_ports((devices.reader.port,) if devices.reader.protocol != "none" else ())
    if not ports:
        print("  " + _("none"))
    for port in ports:
        ids = f"{port.vendor}:{port.product}" if port.vendor else ""
        print("  " + "  ".join(part for part in (port.path, repr(port.description) if port.description else "", ids) if part))
        for link in port.by_id:
            print("      " + link)
        if port.problem is not None:
            print("      " + port.problem.text())

    print(_("Configuration:"))
    for label, match in ((_("scanner"), devices.scanner), (_("keyboard card reader"), devices.card_keyboard)):
        if not match.configured:
            print("  " + _("{device}: not configured").format(device=label))
            continue
        chosen = [device for device in found if matches(device, match)]
        if chosen:
            print(f"  {label}: {describe_match(match)} -> {chosen[0].path}")
        else:
            trouble.append(_("{device}: nothing matches {match}").format(device=label, match=describe_match(match)))
            print("  " + trouble[-1])
    if devices.reader.protocol == "none":
        print("  " + _("serial card reader: not configured"))
    else:
        problem = serial_port_problem(devices.reader.port)
        line = _("serial card reader: {protocol} on {port} at {baud} baud").format(
            protocol=devices.reader.protocol, port=devices.reader.port, baud=devices.reader.baudrate)
        print("  " + line)
        if problem is not None:
            trouble.append(problem.text())
            print("      " + problem.text())
    if not devices.scanner.configured and devices.wedge.enabled:
        print("  " + _("scans and keyboard-style card readers arrive as keystrokes in the kiosk's terminal (keyboard wedge)"))
    if trouble:
        return _fail(_("the configured devices cannot all be used: {problems}").format(problems="; ".join(trouble)))
    return 0


# -- watch --------------------------------------------------------------------------------
def _describe(event: Any) -> str:
    from bookcorner.devices.events import CardTap, DeviceStatus, Scan

    if isinstance(event, Scan):
        return _("scan  {text}  ({source})").format(text=event.text, source=event.source)
    if isinstance(event, CardTap):
        return _("card  {card_id}  ({source})").format(card_id=event.card_id, source=event.source)
    if isinstance(event, DeviceStatus):
        return f"{_(STATE_NAMES[event.state])}: {event.text()}"
    return repr(event)


def _watch(args: argparse.Namespace) -> int:
    from bookcorner.devices.hub import Devices

    config, failed = _loaded(args)
    if config is None:
        return failed
    devices = Devices(config, report_rejects=args.verbose)
    terminal = sys.stdin.isatty() and config.wedge.enabled
    if not devices.config.scanner.configured and not devices.config.card_keyboard.configured and config.reader.protocol == "none":
        print(_("No scanner or card reader is configured."), flush=True)
    if terminal:
        print(_("Keystrokes typed here are classified too: a scanner's or a card reader's burst is shown as a scan or a card."), flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    devices.start()
    try:
        if terminal:
            _watch_terminal(devices, deadline)
        else:
            _watch_events(devices, deadline)
    except KeyboardInterrupt:
        pass
    finally:
        devices.stop()
        for source, counters in devices.diagnostics().items():
            summary = ", ".join(f"{name}={count}" for name, count in counters.items()) or "-"
            print(f"{source}: {summary}", file=sys.stderr)
    return 0


def _print_events(devices: Any, timeout: float) -> None:
    event = devices.get(timeout)
    while event is not None:
        print(f"{time.strftime('%H:%M:%S')}  {_describe(event)}", flush=True)
        event = devices.get(0)


def _watch_events(devices: Any, deadline: float | None) -> None:
    while deadline is None or time.monotonic() < deadline:
        _print_events(devices, 0.1)
    _print_events(devices, 0)


def _watch_terminal(devices: Any, deadline: float | None) -> None:
    """Read this terminal's keys one by one (cbreak mode), timed on arrival, through the wedge."""
    import os
    import select
    import termios
    import tty

    wedge = devices.wedge()
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        while deadline is None or time.monotonic() < deadline:
            ready, _w, _x = select.select([fd], [], [], devices.config.max_key_gap)
            handed_back: list[Any] = []
            if ready:
                for char in os.read(fd, 256).decode("utf-8", "replace"):
                    now = time.monotonic()
                    handed_back += wedge.enter(now) if char in "\r\n" else wedge.key(char, now) if char.isprintable() else []
            handed_back += wedge.expire()
            for fragment in handed_back:
                if fragment.text or fragment.enter:
                    print(_("typed by a person: {text}").format(text=repr(fragment.text) + (" ⏎" if fragment.enter else "")), flush=True)
            _print_events(devices, 0)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


# -- replays ------------------------------------------------------------------------------
def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        _fail(_("cannot read {path}: {error}").format(path=path, error=error.strerror or error), 2)
        return None


def _replay_scanner(args: argparse.Namespace) -> int:
    from bookcorner.devices.keyboard import NotACapture
    from bookcorner.devices.replay import replay_scanner

    config, failed = _loaded(args)
    if config is None:
        return failed
    data = _read(args.file)
    if data is None:
        return 2
    max_gap = (args.max_gap_ms if args.max_gap_ms is not None else config.max_key_gap_ms) / 1000
    scans = 0
    try:
        for line in replay_scanner(data, max_gap, tuple(config.scanner.terminators), args.record_size):
            if line.note:
                print(line.text, file=sys.stderr)
            else:
                scans += 1
                print(line.text)
    except NotACapture:
        return _fail(_("{path} is not a capture of input events ({size} bytes; expected 24-byte records, or 16-byte ones from a 32-bit system)").format(path=args.file, size=len(data)))
    if not scans:
        return _fail(_("no scans found in {path}: no Enter key, or not the scanner's event device?").format(path=args.file))
    return 0


def _replay_reader(args: argparse.Namespace) -> int:
    from bookcorner.devices.protocols import CardRead
    from bookcorner.devices.replay import replay_reader

    config, failed = _loaded(args)
    if config is None:
        return failed
    data = _read(args.file)
    if data is None:
        return 2
    cards = rejected = 0
    for result in replay_reader(data, args.protocol, args.card_id_format or config.card_id_format,
                                args.ascii_format or config.reader.ascii_format):
        if isinstance(result, CardRead):
            cards += 1
            print(result.card_id)
        else:
            rejected += 1
            print(_("rejected: {reason}").format(reason=result.message.text()), file=sys.stderr)
    if not cards:
        return _fail(_("no valid card frame in {path} ({rejected} rejected): wrong protocol or baud rate?").format(path=args.file, rejected=rejected))
    return 0
