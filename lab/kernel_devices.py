"""Scenario 2 of the lab: the kiosk's devices as kernel devices in the booted guest.

The barcode scanner is a uinput keyboard in the guest with a real scanner's USB ids and name
(lab/guest_scanner.py, run through the agent): udev and the kiosk meet it as they meet the one
plugged into a Pi's USB port, through evdev, and it types accession barcodes and ISBNs a key
every few milliseconds. The RFID reader is a USB serial adapter on QEMU's xHCI controller
(``usb-serial``, an FTDI FT232 to the guest's ftdi_sio: /dev/ttyUSB0), its other end a unix
socket on which the host writes the frames an RDM6300 (then an ID-12LA) sends for a card:
the closest thing to an RDM6300 on a USB-TTL adapter, and unlike a UART (/dev/ttyS1) it can
be pulled out (QMP ``device_del``) and put back (``device_add``) while the kiosk runs.

The installed card is set up as a school's technician would (docs/hardware.md): the scanner's
and the adapter's USB ids in /etc/bookcorner/kiosk.toml, ``bookcorner udev-rules`` into
/etc/udev/rules.d, udev reloaded and the kiosk restarted. Then a child's visit: a tap, a
book borrowed, both devices unplugged (the kiosk must say so) and plugged back at once (and
work again without a restart), and the same visit carries on: a second book (an ISBN) through
the replugged scanner, and a second tap on the replugged reader ends the visit (as a second
tap does: it is not a "Hello"). One book is given back at the idle screen and a tap there
opens a visit again; the loans must reach the central server inside the guest. Last, the
technician swaps in an ID-12LA and a tap of its frames greets the child.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import socket
import time
from functools import reduce
from operator import xor
from pathlib import Path
from typing import TYPE_CHECKING

from lab.run import (
    BOOKCORNER,
    CENTRAL_DB,
    CHILD_CARD,
    DEMO_BOOK,
    IDLE_WORDS,
    KIOSK_TOML,
    as_kiosk_user,
    boot_figures,
    log,
    screenshot,
    tty1,
)

if TYPE_CHECKING:
    from lab.run import Lab, Machine

HERE = Path(__file__).resolve().parent
#: the scanner the guest's uinput device pretends to be, and the FTDI adapter QEMU's usb-serial is
SCANNER_USB, READER_USB = "05e0:1200", "0403:6001"
#: the second book: a shared ISBN (several unlabelled copies), scanned from the book's back
ISBN_BOOK = "9787500751939"
FIFO = "/run/lab-scanner"
SCANNER_LOG = "/var/lib/lab/scanner.log"
KIOSK_LOG = "/var/lib/bookcorner/logs/kiosk.log"
#: what the kiosk's top bar says about a device it has lost
MISSING = "not connected"
READER_DEVICE = "usb-serial,chardev=rfid,id=reader,bus=xhci.0"


def qemu_devices(run: Path) -> tuple[str, ...]:
    return ("-device", "qemu-xhci,id=xhci",
            "-chardev", f"socket,id=rfid,path={run / 'rfid.sock'},server=on,wait=off",
            "-device", READER_DEVICE)


def em4100_frame(card_id: str, trailer: bytes = b"", version: int = 0x01) -> bytes:
    """What an RDM6300 (no trailer) or an ID-12LA (CR LF) sends for the card whose printed
    number is ``card_id``: STX, the 5 bytes in hex, their XOR in hex, the trailer, ETX. Written
    here from the readers' datasheets, apart from the kiosk's decoder it is checked against."""
    card = bytes([version]) + int(card_id).to_bytes(4, "big")
    body = card.hex().upper() + f"{reduce(xor, card, 0):02X}"
    return b"\x02" + body.encode("ascii") + trailer + b"\x03"


class Steps(dict):
    """Each step's seconds (None: not in time), said as it comes; a step the rest depends on
    that did not come ends the scenario (``needed``), with what was seen so far."""

    def __init__(self, figures: dict, run: Path) -> None:
        super().__init__()
        self.figures, self.run = figures, run

    def __setitem__(self, name: str, seconds: float | None) -> None:
        super().__setitem__(name, seconds)
        log(f"scenario 2: {name}: {'not in time' if seconds is None else f'{seconds} s'}")

    def needed(self, name: str) -> None:
        if self.get(name) is None:
            raise Stopped(f"scenario 2 stopped: {name} did not happen (see {self.run / 'scenario2.log'})")


class Stopped(Exception):
    """A step the rest of the scenario needs did not happen."""


class Reader:
    """The host's end of the card reader's serial line."""

    def __init__(self, run: Path) -> None:
        self.connection = socket.socket(socket.AF_UNIX)
        self.connection.connect(str(run / "rfid.sock"))
        self.frames = 0

    def tap(self, card_id: str, trailer: bytes = b"", repeats: int = 3) -> None:
        """A card held on the reader a moment: an RDM6300 repeats its frame while the card is
        in the field (about every 100 ms), an ID-12LA sends it once (``repeats=1``)."""
        for _ in range(repeats):
            self.connection.sendall(em4100_frame(card_id, trailer))
            self.frames += 1
            time.sleep(0.1)

    def close(self) -> None:
        self.connection.close()


def screen(machine: Machine) -> str:
    """tty1 as the child sees it, in Unicode where the console keeps it (/dev/vcsu1: the
    children's Chinese names), else as the console's glyphs (/dev/vcsa1)."""
    rc, out = machine.sh("base64 -w0 /dev/vcsu1")
    if rc != 0:
        return tty1(machine)
    chars = base64.b64decode(out.strip()).decode("utf-32-le", errors="replace")
    _rc, size = machine.sh("stty -F /dev/tty1 size")
    rows, cols = (int(n) for n in size.split()) if len(size.split()) == 2 else (0, 0)
    if not cols:
        return chars
    return "\n".join(chars[r * cols:(r + 1) * cols].rstrip() for r in range(rows)).strip("\n")


def wait_screen(machine: Machine, words: str, timeout: float, absent: bool = False) -> float | None:
    """Seconds until ``words`` show on tty1 (``absent``: until they are gone); None: not in time.
    The loop runs in the guest (no round trip a poll)."""
    test = f"grep -qaF {shlex.quote(words)} /dev/vcs1"
    loop = f"until {'! ' if absent else ''}{test}; do sleep 0.1; done"
    began = time.monotonic()
    rc, _out = machine.sh(f"timeout {int(timeout)} bash -c {shlex.quote(loop)}", timeout=timeout + 10)
    return round(time.monotonic() - began, 1) if rc == 0 else None


def kiosk_log_since(machine: Machine, mark: int, pattern: str = "device ") -> list[str]:
    _rc, out = machine.sh(f"tail -c +{mark + 1} {KIOSK_LOG} | grep -a {shlex.quote(pattern)} | cut -c1-240")
    return out.splitlines()


def log_size(machine: Machine) -> int:
    _rc, out = machine.sh(f"stat -c %s {KIOSK_LOG} 2>/dev/null || echo 0")
    return int(out.split()[0]) if out.split() and out.split()[0].isdigit() else 0


def set_up_as_a_technician(machine: Machine, protocol: str = "rdm6300") -> dict:
    """The devices in the settings and the udev rules, as docs/hardware.md tells a technician:
    [devices.scanner] vendor/product, [devices.reader] protocol and the stable port name the
    rules give the adapter; ``bookcorner udev-rules --reader-usb``; reload udev; restart the kiosk."""
    vendor, product = SCANNER_USB.split(":")
    edit = ("import re, sys; p = sys.argv[1]; t = open(p).read()\n"
            "def put(section, key, value):\n"
            "    global t\n"
            "    start = t.index('[' + section + ']'); end = t.find('\\n[', start + 1); end = len(t) if end < 0 else end\n"
            "    body = re.sub('(?m)^' + key + r' = [^#\\n]*', key + ' = ' + value + ' ', t[start:end], count=1)\n"
            "    t = t[:start] + body + t[end:]\n"
            f"put('devices.scanner', 'vendor', '\"{vendor}\"'); put('devices.scanner', 'product', '\"{product}\"')\n"
            f"put('devices.reader', 'protocol', '\"{protocol}\"'); put('devices.reader', 'port', '\"/dev/bookcorner-reader\"')\n"
            "open(p, 'w').write(t)\n")
    steps = [f"python3 -c {shlex.quote(edit)} {KIOSK_TOML}",
             (f"{BOOKCORNER} --config {KIOSK_TOML} udev-rules --reader-usb {READER_USB} "
             "--output /etc/udev/rules.d/70-bookcorner.rules"),
             "udevadm control --reload", "udevadm trigger --settle", "systemctl restart bookcorner-kiosk"]
    figures: dict = {}
    for step in steps:
        rc, out = machine.sh(step, timeout=180)
        if rc != 0:
            raise RuntimeError(f"{step!r} failed ({rc}): {out[-400:]}")
    _rc, figures["devices_settings"] = machine.sh(
        f"sed -n '/^\\[devices.scanner\\]/,/^grab/p;/^\\[devices.reader\\]/,/^port/p' {KIOSK_TOML} | grep -v '^#'")
    _rc, figures["udev_rules"] = machine.sh("grep -v '^#' /etc/udev/rules.d/70-bookcorner.rules | grep .")
    return figures


def plug_scanner(machine: Machine) -> float | None:
    """The scanner plugged in: the uinput device made; seconds until udev gave it its name."""
    machine.sh(f"modprobe uinput; /opt/bookcorner/venv/bin/python /opt/lab/scanner.py {FIFO}",
               background=True, log_file=SCANNER_LOG)
    began = time.monotonic()
    rc, _out = machine.sh("timeout 60 bash -c 'until [ -e /dev/bookcorner-scanner ]; do sleep 0.1; done'", timeout=70)
    return round(time.monotonic() - began, 1) if rc == 0 else None


#: the kiosk's limit between two keys of one scan ([devices] max_key_gap_ms)
KEY_GAP_MS = 50


def scan(machine: Machine, code: str, retyped: list[str]) -> None:
    """The scanner types ``code``; typed again (at most three times) only when the scanner program's
    own log shows it left more than the kiosk's gap between two keys: then the "hardware"
    failed, not the kiosk, and a child would scan again. Each retype is kept in ``retyped``."""
    for _attempt in range(4):
        _rc, before = machine.sh(f"grep -c 'typed {code} ' {SCANNER_LOG} || true")
        machine.sh(f"echo 'type {code}' > {FIFO}")
        loop = f"until [ $(grep -c 'typed {code} ' {SCANNER_LOG}) -gt {int(before.split()[0] or 0)} ]; do sleep 0.1; done"
        machine.sh(f"timeout 30 bash -c {shlex.quote(loop)}", timeout=40)
        _rc, line = machine.sh(f"grep 'typed {code} ' {SCANNER_LOG} | tail -1")
        longest = re.search(r"longest between two keys ([0-9.]+) ms", line)
        if longest is None or float(longest.group(1)) <= KEY_GAP_MS:
            return
        retyped.append(line.strip())


def kernel_devices(lab: Lab) -> dict:
    """Scenario 2 (see the module's docstring)."""
    image, figures = lab.installed_image()
    disk = lab.copy_of(image, "scenario2")
    machine = lab.boot(disk, "scenario2", qemu_devices(lab.run))
    steps = Steps(figures, lab.run)
    try:
        return visit(lab, machine, figures, steps)
    except Stopped as stopped:
        _rc, figures["kiosk_log_devices"] = machine.sh(f"grep -a 'device \\|scan' {KIOSK_LOG} | tail -30 | cut -c1-240")
        _rc, figures["scanner_log"] = machine.sh(f"cat {SCANNER_LOG}")
        figures["screen_when_stopped"] = screen(machine)
        machine.stop()
        (lab.run / "scenario2.log").write_text(machine.text())
        return {"verdict": "fail", "why": str(stopped), **figures, "steps": dict(steps)}


def visit(lab: Lab, machine: Machine, figures: dict, steps: Steps) -> dict:
    figures.update(boot_figures(machine, lab.timeout))
    machine.agent(60)
    checks: dict[str, bool] = {}
    screens: dict[str, str] = {}
    scans = 0
    retyped: list[str] = figures.setdefault("scans_retyped", [])
    machine.sh("mkdir -p /var/lib/lab && base64 -d > /opt/lab/scanner.py <<'EOF'\n"
               + base64.encodebytes((HERE / "guest_scanner.py").read_bytes()).decode() + "EOF\n")
    began = time.monotonic()
    figures.update(set_up_as_a_technician(machine))
    steps["kiosk_restarted_idle"] = wait_screen(machine, IDLE_WORDS, 180)
    figures["technician_s"] = round(time.monotonic() - began, 1)
    mark = log_size(machine)
    steps["scanner_named_by_udev"] = plug_scanner(machine)
    # the rules match the input device's own ids: a uinput device has no USB parent (no ATTRS{idVendor})
    _rc, figures["scanner_udev_ids"] = machine.sh(
        "udevadm info --attribute-walk --name=/dev/bookcorner-scanner "
        "| grep -E 'id/vendor|id/product|idVendor|idProduct|ATTRS\\{name\\}' | sort -u")
    vendor, product = SCANNER_USB.split(":")
    checks["scanner_udev_ids"] = (f'ATTRS{{id/vendor}}=="{vendor}"' in figures["scanner_udev_ids"]
                                  and f'ATTRS{{id/product}}=="{product}"' in figures["scanner_udev_ids"])
    reader = Reader(lab.run)
    # both connected: the kiosk's top bar says nothing is missing
    steps["devices_connected"] = wait_screen(machine, MISSING, 60, absent=True)
    _rc, figures["device_nodes"] = machine.sh(
        "ls -l /dev/bookcorner-scanner /dev/bookcorner-reader $(readlink -f /dev/bookcorner-scanner) "
        "$(readlink -f /dev/bookcorner-reader) 2>&1")
    figures["kiosk_log_plugged"] = kiosk_log_since(machine, mark)
    checks["scanner_open_to_the_kiosk_user"] = any("scanner" in line and "connected" in line and "disconnected"
                                                   not in line for line in figures["kiosk_log_plugged"])
    checks["reader_open_to_the_kiosk_user"] = any("reader" in line and "connected" in line
                                                  and "disconnected" not in line
                                                  for line in figures["kiosk_log_plugged"])

    # -- the visit: a tap, a book ------------------------------------------------------------------
    started = time.monotonic()
    reader.tap(CHILD_CARD)
    steps["tap_to_hello"] = wait_screen(machine, "Hello", 60)
    steps.needed("tap_to_hello")
    screens["tapped"] = screen(machine)
    scan(machine, DEMO_BOOK, retyped)
    scans += 1
    steps["scan_to_borrowed"] = wait_screen(machine, "Borrowed", 60)
    steps.needed("scan_to_borrowed")
    screens["borrowed_first"] = screen(machine)

    # -- both unplugged in the middle of the visit ---------------------------------------------------
    _rc, pid_before = machine.sh("systemctl show bookcorner-kiosk -p MainPID --value")
    mark = log_size(machine)
    unplugged = time.monotonic()
    machine.sh(f"echo unplug > {FIFO}")
    machine.qmp("device_del", id="reader")
    steps["unplug_to_missing_shown"] = wait_screen(machine, MISSING, 60)
    # both named: wait until the second one shows in the kiosk's log as well (briefly: the visit's clock runs)
    for _ in range(20):
        lines = kiosk_log_since(machine, mark)
        if sum(("disconnected" in line or MISSING in line) for line in lines) >= 2:
            break
        time.sleep(0.5)
    figures["kiosk_log_unplugged"] = kiosk_log_since(machine, mark)
    figures["unplugged_both_known_s"] = round(time.monotonic() - unplugged, 1)
    screens["unplugged"] = screen(machine)
    figures["screenshot_unplugged"] = screenshot(machine, lab.run / "devices-unplugged-tty1.png")
    top = screens["unplugged"].splitlines()[0] if screens["unplugged"] else ""
    checks["missing_said_on_screen"] = MISSING in top
    gone = [line for line in figures["kiosk_log_unplugged"] if "disconnected" in line or MISSING in line]
    checks["both_missing_in_log"] = any("scanner" in line for line in gone) and any("reader" in line for line in gone)

    # -- plugged back at once: the child's visit (it ends after 30 s with no scan or tap) carries on ---
    mark = log_size(machine)
    replugged = time.monotonic()
    answer = machine.qmp("device_add", driver="usb-serial", chardev="rfid", id="reader", bus="xhci.0")
    figures["device_add"] = answer.get("error", "ok")
    machine.sh(f"echo plug > {FIFO}")  # the scanner's cable back in, at the same time
    # The host's end of the reader's line stays connected, as a reader's wires stay on its USB-TTL
    # adapter. (QEMU's usb-serial detaches the device from the bus whenever its chardev's
    # connection closes: last session's reconnection here was a second, unnoticed unplug.)
    for name, node in (("reader_replug_named_by_udev", "/dev/bookcorner-reader"),
                       ("scanner_replug_named_by_udev", "/dev/bookcorner-scanner")):
        loop = f"until [ -e {node} ]; do sleep 0.1; done"
        rc, _out = machine.sh(f"timeout 60 bash -c {shlex.quote(loop)}", timeout=70)
        steps[name] = round(time.monotonic() - replugged, 1) if rc == 0 else None
    steps["replug_to_missing_gone"] = wait_screen(machine, MISSING, 60, absent=True)
    figures["reconnect_s"] = round(time.monotonic() - replugged, 1) if steps["replug_to_missing_gone"] else None
    figures["kiosk_log_replugged"] = kiosk_log_since(machine, mark)
    screens["replugged"] = screen(machine)
    figures["unplugged_to_replugged_s"] = round(time.monotonic() - unplugged, 1)
    checks["visit_open_after_replug"] = IDLE_WORDS not in screens["replugged"]

    # -- the second book in the same visit, through the replugged scanner -------------------------
    scan(machine, ISBN_BOOK, retyped)
    scans += 1
    # "You have 2 books: bring one back …", or "You may borrow 1 more (you have 2)."
    steps["isbn_scan_after_replug_to_borrowed"] = wait_screen(machine, "have 2", 60)
    screens["borrowed_second"] = screen(machine)
    # ... and the child taps again to finish (the kiosk's "tap again when you are done")
    finished = time.monotonic()
    reader.tap(CHILD_CARD)
    steps["second_tap_to_idle"] = wait_screen(machine, IDLE_WORDS, 60)
    # ended by the tap, not by the 30 s time-out
    checks["visit_ended_by_the_tap"] = (steps["second_tap_to_idle"] is not None
                                        and time.monotonic() - finished < 20)
    figures["visit_s"] = round(time.monotonic() - started, 1)

    # -- one book back (no card: scanned at the idle screen) ------------------------------------
    scan(machine, DEMO_BOOK, retyped)
    scans += 1
    steps["return_scan_to_is_back"] = wait_screen(machine, "is back", 60)
    screens["returned"] = screen(machine)

    # -- the replugged reader once more, beyond doubt: a tap at the idle screen opens a visit -----
    reader.tap(CHILD_CARD)
    steps["tap_after_replug_to_hello"] = wait_screen(machine, "Hello", 60)
    screens["tapped_after_replug"] = screen(machine)
    _rc, pid_after = machine.sh("systemctl show bookcorner-kiosk -p MainPID --value")
    checks["no_restart"] = pid_before.strip() == pid_after.strip() and pid_before.strip() not in ("", "0")

    # -- the loans in the journal and on the central server --------------------------------------
    began = time.monotonic()
    loans = None
    for _ in range(60):
        rc, out = machine.sh(as_kiosk_user("circ", "status", CHILD_CARD, "--json", "--data-dir", "/var/lib/bookcorner"))
        if rc == 0:
            loans = [held["item_id"] for held in json.loads(out.splitlines()[-1])["loans"]]
            if len(loans) == 1:
                break
        time.sleep(1)
    figures["journal_loans"] = loans
    query = ("import sqlite3, json; db = sqlite3.connect('file:" + CENTRAL_DB + "?mode=ro', uri=True); "
             "print(json.dumps(db.execute(\"select item_id, returned_at is not null from loans where kiosk_id = "
             "'demo-corner' order by item_id\").fetchall()))")
    on_server = None
    for _ in range(120):
        rc, out = machine.sh("python3 -c " + shlex.quote(query))
        if rc == 0 and out.strip().startswith("["):
            rows = json.loads(out.strip().splitlines()[-1])
            if len(rows) == 2 and sorted(returned for _item, returned in rows) == [0, 1]:
                on_server = rows
                break
        time.sleep(1)
    steps["loans_on_server"] = round(time.monotonic() - began, 1) if on_server else None
    figures["server_loans"] = on_server

    # -- the technician swaps in an ID-12LA: the same tap, its frames ----------------------------
    set_up_as_a_technician(machine, "id12")
    steps["id12_kiosk_idle"] = wait_screen(machine, IDLE_WORDS, 180)
    wait_screen(machine, MISSING, 60, absent=True)
    reader.tap(CHILD_CARD, b"\r\n", repeats=1)
    steps["id12_tap_to_hello"] = wait_screen(machine, "Hello", 60)
    screens["id12_tapped"] = screen(machine)
    _rc, figures["kiosk_journal_check"] = machine.sh(as_kiosk_user("journal", "check", "--data-dir", "/var/lib/bookcorner"),
                                                     timeout=300)
    _rc, figures["scanner_log"] = machine.sh(f"cat {SCANNER_LOG}")
    reader.close()
    machine.qmp("quit")
    machine.stop()
    (lab.run / "scenario2.log").write_text(machine.text())

    figures.update(steps=dict(steps), screens=screens, checks=checks, scans_typed=scans, frames_sent=reader.frames)
    checks["tap_named_the_child"] = "class 3-1" in screens["tapped"]
    checks["journal_one_loan_open"] = loans is not None and len(loans) == 1
    checks["server_two_loans_one_returned"] = on_server is not None
    checks["id12_tap"] = steps["id12_tap_to_hello"] is not None
    failed = [name for name, value in steps.items() if value is None] + [name for name, ok in checks.items() if not ok]
    if failed:
        figures["why"] = f"not as expected: {', '.join(failed)} (see {lab.run / 'scenario2.log'})"
    return {"verdict": "fail" if failed else "pass", **figures}

