"""Scenario 4's last case: the data partition full, in the booted guest.

The partition is filled as a school's would fill: by the kiosk's own user (the file system keeps
root's reserved blocks, as Debian makes it, so systemd and its journal still write), with a
file in /var/tmp on the same partition. Before it fills, the sync daemon is stopped and a child
borrows a book at the kiosk (typed at tty1 as a keyboard-wedge scanner types), so that a loan
waits to be pushed. With the disk full:

* the kiosk, asked to lend a second book, must say on the screen that it was not saved, and
  the loan must not be in the journal (the child is not told "done" for what is not kept);
* the sync daemon, started again, and the central server beside it (on the same partition)
  must say in their logs why they cannot go on (the disk is full), not fail silently.

When the space comes back (the file removed), with nothing restarted by hand: the waiting loan
must reach the central server, and the second book must be lent at the kiosk and reach it too.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import TYPE_CHECKING

from lab.kernel_devices import wait_screen
from lab.run import CENTRAL_DB, CHILD_CARD, DEMO_BOOK, IDLE_WORDS, QMP, as_kiosk_user, tty1

if TYPE_CHECKING:
    from lab.run import Machine

#: a second labelled book of the demo school (小猫钓鱼, a picture book: the same child may borrow it)
SECOND_BOOK = "30732000100034"
FILLER = "/var/tmp/lab-filler"
#: fills the partition of /var/lib/bookcorner as far as its user may (root's reserve stays): a
#: preallocated file, then writes until not one more byte goes; prints what is left to the user
FILL = ("import os; path = '" + FILLER + "'; data = os.statvfs('/var/lib/bookcorner'); "
        "fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600); "
        "os.posix_fallocate(fd, 0, max(data.f_bavail * data.f_frsize - (1 << 20), 1)); "
        "os.lseek(fd, 0, os.SEEK_END)\n"
        "for size in (1 << 16, 4096, 1):\n"
        "    try:\n"
        "        while True: os.write(fd, bytes(size))\n"
        "    except OSError: pass\n"
        "os.fsync(fd); os.close(fd); data = os.statvfs('/var/lib/bookcorner'); print(data.f_bavail * data.f_frsize)")
OPEN_LOANS = ("import sqlite3; db = sqlite3.connect('file:" + CENTRAL_DB + "?mode=ro', uri=True); "
              "print(db.execute(\"select count(*) from loans where kiosk_id = 'demo-corner' and "
              "returned_at is null\").fetchone()[0])")
#: what the product's logs say about a full disk (the journal's, the daemon's, SQLite's words)
FULL_WORDS = ("disk is full", "partition full", "disk full", "No space left")


def type_scan(machine: Machine, code: str) -> None:
    """``code`` and Enter as a scanner sends them, a few keys a QMP command: one key a command (as
    scenario 1 types) came with gaps over the kiosk's scan limit on a loaded host, and the kiosk
    took the card for typing (the PS/2 queue holds 16 bytes: four keys' presses and releases fit)."""
    keys = [char.lower() for char in code] + ["ret"]
    with QMP(machine.qmp_path) as qmp:
        for start in range(0, len(keys), 4):
            events = [{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}
                      for key in keys[start:start + 4] for down in (True, False)]
            qmp.execute("input-send-event", events=events)
            time.sleep(0.005)


def lend(machine: Machine, book: str, expect: str, timeout: float = 90,
         screens: dict | None = None) -> float | None:
    """A child's visit at the kiosk on tty1: the idle screen, the card, the book; seconds until
    ``expect`` shows (None: not in time). ``screens`` gets tty1's words where a step stopped
    (or after the book), so that a failed visit says what the child saw."""
    screens = {} if screens is None else screens
    if wait_screen(machine, IDLE_WORDS, 240) is None:
        screens["no_idle"] = squeeze(tty1(machine))
        return None
    began = time.monotonic()
    type_scan(machine, CHILD_CARD)
    if wait_screen(machine, "Hello", 60) is None:
        screens["no_hello"] = squeeze(tty1(machine))
        return None
    type_scan(machine, book)
    shown = wait_screen(machine, expect, timeout)
    screens["after_book"] = squeeze(tty1(machine))
    return None if shown is None else round(time.monotonic() - began, 1)


def squeeze(text: str) -> str:
    """A screen's words without its runs of blanks (for the figures)."""
    return " ".join(text.split())[:600]


def held(machine: Machine) -> list[str] | None:
    """The books the child holds, as the kiosk's journal says (None: it could not be read)."""
    rc, out = machine.sh(as_kiosk_user("circ", "status", CHILD_CARD, "--json", "--data-dir", "/var/lib/bookcorner"))
    try:
        return [loan["item_id"] for loan in json.loads(out.splitlines()[-1])["loans"]] if rc == 0 else None
    except (ValueError, IndexError, KeyError):
        return None


def open_loans_on_server(machine: Machine, at_least: int, timeout: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        rc, out = machine.sh("python3 -c " + shlex.quote(OPEN_LOANS))
        if rc == 0 and out.strip().isdigit() and int(out.strip()) >= at_least:
            return round(time.monotonic() - began, 1)
        time.sleep(2)
    return None


def logs_since(machine: Machine, unit: str, since: str) -> list[str]:
    _rc, out = machine.sh(f"journalctl -u {unit} --since '{since}' --no-pager -o cat | tail -40")
    return [line for line in out.splitlines() if line.strip()]


def full_disk(machine: Machine) -> dict:
    found: dict = {}
    machine.sh("systemctl stop bookcorner-syncd")
    found["first_loan_s"] = lend(machine, DEMO_BOOK, "Borrowed")
    before = held(machine) or []
    _rc, since = machine.sh("date '+%Y-%m-%d %H:%M:%S'")
    began = time.monotonic()
    rc, left = machine.sh("runuser -u bookcorner -- python3 -c " + shlex.quote(FILL), timeout=600)
    found["fill"] = {"rc": rc, "bytes_left_to_the_kiosk_user": left.strip()[-200:],
                     "seconds": round(time.monotonic() - began, 1)}
    _rc, found["df_full"] = machine.sh("df -h /var/lib/bookcorner | tail -1")
    machine.sh("systemctl start bookcorner-syncd")

    # -- full: the kiosk refuses to say "done", the daemon and the server say why -----------------
    found["screens"] = {"full": {}, "after": {}}
    found["refused_s"] = lend(machine, SECOND_BOOK, "Not saved", screens=found["screens"]["full"])
    found["screen_full"] = tty1(machine)
    during = held(machine)
    found["held_while_full"] = during
    time.sleep(30)  # a few of the daemon's turns
    said = {unit: logs_since(machine, unit, since.strip())
            for unit in ("bookcorner-kiosk", "bookcorner-syncd", "bookcorner-central")}
    found["logs_while_full"] = {unit: lines[-8:] for unit, lines in said.items()}
    found["said_why"] = {unit: any(word.lower() in line.lower() for line in lines for word in FULL_WORDS)
                         for unit, lines in said.items()}
    _rc, states = machine.sh("systemctl show bookcorner-kiosk bookcorner-syncd bookcorner-central "
                             "-p Id -p ActiveState -p NRestarts")
    found["units_while_full"] = " ".join(states.split())

    # -- the space back: nothing restarted by hand ------------------------------------------------
    machine.sh(f"rm -f {FILLER}")
    found["first_loan_on_server_s"] = open_loans_on_server(machine, 1, 300)
    found["second_loan_s"] = lend(machine, SECOND_BOOK, "You have 2 books", screens=found["screens"]["after"])
    after = held(machine)
    found["held_after"] = after
    found["both_on_server_s"] = open_loans_on_server(machine, 2, 300) if found["second_loan_s"] else None
    _rc, states = machine.sh("systemctl show bookcorner-kiosk bookcorner-syncd bookcorner-central "
                             "-p Id -p ActiveState -p NRestarts")
    found["units_after"] = " ".join(states.split())
    refused = (found["first_loan_s"] is not None and len(before) == 1 and found["refused_s"] is not None
               and during is not None and len(during) == 1)
    said_why = found["said_why"]["bookcorner-syncd"] or found["said_why"]["bookcorner-central"]
    back = (found["first_loan_on_server_s"] is not None and found["second_loan_s"] is not None
            and after is not None and len(after) == 2 and found["both_on_server_s"] is not None
            and found["units_after"].count("ActiveState=active") == 3)
    found["ok"] = refused and said_why and back
    if not found["ok"]:
        found["why"] = ("the kiosk said 'done' or kept a loan on a full disk" if not refused else
                        "neither the sync daemon nor the server said the disk is full" if not said_why else
                        "not everything came back when the space did")
    return found
