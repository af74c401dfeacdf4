"""Scenario 5 of the lab: the kiosk showing Chinese on the real screen, cage + foot on a virtual GPU.

The lab's card is installed on the bare console (``--screen console``: the other scenarios read the
kiosk's words from tty1's text, /dev/vcs1, which a Wayland screen has none of). This scenario then
does what the installer tells a school that wants Chinese: with cage, foot and a CJK font on the
machine (the base image carries them: the guest has no network for apt-get), run the installer
again with ``--screen wayland``, and reboot. The screen is QEMU's standard VGA, which the guest's
bochs-drm driver makes a DRM device (/dev/dri/card0) for cage. Once the kiosk says it is ready,
QMP ``screendump`` takes the screen as a picture (the idle screen, a child's card typed at it, a
book borrowed), saved as PNGs for a person to look at: the Chinese must be glyphs, not boxes.
The loan typed at it must be in the journal, so the keyboard reaches the kiosk through cage.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from lab.run import (
    CHILD_CARD,
    DEMO_BOOK,
    KIOSK_TOML,
    QMP,
    as_kiosk_user,
    boot_figures,
    log,
    screenshot,
)

if TYPE_CHECKING:
    from pathlib import Path

    from lab.run import Lab, Machine

WAYLAND_UNIT = "bookcorner-kiosk-wayland"
SERVICES = (WAYLAND_UNIT, "bookcorner-syncd", "bookcorner-central")
KIOSK_LOG = "/var/lib/bookcorner/logs/kiosk.log"
READY = "kiosk ready"


def ready_count(machine: Machine) -> int:
    _rc, out = machine.sh(f"grep -c '{READY}' {KIOSK_LOG} || true")
    return int(out.split()[0]) if out.split() and out.split()[0].isdigit() else 0


def wait_ready(machine: Machine, before: int, timeout: float) -> float | None:
    """Seconds from QEMU's start until the kiosk logs it is ready once more than ``before`` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready_count(machine) > before:
            return machine.at()
        time.sleep(1)
    return None


def distinct_colours(png: Path) -> int:
    """How many colours the picture has (a blank or one-colour screen has 1 or 2): read back from the
    PNG the lab wrote (8-bit RGB, filter 0 on every row, one IDAT)."""
    import struct
    import zlib

    data = png.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    position, idat = 8, b""
    while position < len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        if data[position + 4:position + 8] == b"IDAT":
            idat += data[position + 8:position + 8 + length]
        position += 12 + length
    rows = zlib.decompress(idat)
    stride = width * 3 + 1
    return len({rows[y * stride + 1 + x * 3:y * stride + 4 + x * 3] for y in range(0, height, 2)
                for x in range(0, width, 2)})


def loans_of(machine: Machine, card: str) -> list[str]:
    rc, out = machine.sh(as_kiosk_user("circ", "status", card, "--json", "--data-dir", "/var/lib/bookcorner"))
    if rc != 0:
        return []
    return [loan["item_id"] for loan in json.loads(out.splitlines()[-1])["loans"] if loan["item_id"]]


DROP_IN = f"/run/systemd/system/{WAYLAND_UNIT}.service.d"


def diagnose(machine: Machine, before: int) -> dict:
    """What the seat, the session and cage say when the kiosk is not ready under cage: the session
    logind made, the processes, then the unit once more with cage's debug output (-D), and once more
    with wlroots' software renderer (pixman), each for 60 s (a drop-in under /run: gone at the next boot)."""
    found: dict = {}
    _rc, found["sessions"] = machine.sh(
        "loginctl list-sessions --no-legend; for s in $(loginctl list-sessions --no-legend | awk '{print $1}'); "
        "do loginctl show-session $s -p Seat -p VTNr -p TTY -p Active -p State -p Type -p Class -p Service; done")
    _rc, found["processes"] = machine.sh("ps -eo pid,user,stat,wchan:24,args | grep -E 'cage|foot|bookcorner' "
                                         "| grep -v grep; fgconsole; ls -l /dev/dri /dev/tty1")
    _rc, found["journal"] = machine.sh("journalctl -b --no-pager -o short-monotonic | "
                                       "grep -iE 'cage|wlr|seat|logind|drm|kiosk-wayland|foot' | tail -30")
    for name, lines in (("debug", ""), ("pixman", "Environment=WLR_RENDERER=pixman\\n")):
        machine.sh(f"mkdir -p {DROP_IN} && printf '[Service]\\n{lines}ExecStart=\\nExecStart=/usr/bin/cage -D -d -s -- "
                   f"/usr/bin/foot --config=/etc/bookcorner/foot.ini /opt/bookcorner/venv/bin/bookcorner kiosk\\n' "
                   f"> {DROP_IN}/lab.conf && systemctl daemon-reload && systemctl restart {WAYLAND_UNIT}")
        time.sleep(60)
        _rc, found[f"{name}_log"] = machine.sh(f"journalctl -b -u {WAYLAND_UNIT} --no-pager -o cat | tail -40")
        _rc, found[f"{name}_processes"] = machine.sh("ps -eo pid,user,stat,wchan:24,args | "
                                                     "grep -E 'cage|foot|bookcorner' | grep -v grep")
        found[f"{name}_ready"] = ready_count(machine) > before
        if found[f"{name}_ready"]:
            break
    return found


def chinese_screen(lab: Lab) -> dict:
    """Scenario 5 (see the module's docstring)."""
    image, figures = lab.installed_image()
    disk = lab.copy_of(image, "scenario5")
    machine = lab.boot(disk, "scenario5-console")
    figures["console_boot"] = boot_figures(machine, lab.timeout)
    machine.agent(60)
    _rc, figures["display"] = machine.sh("ls /dev/dri; cat /sys/class/drm/card0/device/uevent 2>/dev/null | "
                                         "grep DRIVER")
    _rc, figures["cjk_font"] = machine.sh("fc-match 'Noto Sans Mono CJK SC' 2>&1 | head -1")
    log("scenario 5: the installer again with --screen wayland (cage + foot)")
    began = time.monotonic()
    rc, out = machine.sh("/opt/lab/release/scripts/install --wheelhouse /opt/lab/wheelhouse --screen wayland",
                         timeout=1800)
    figures["reinstall_s"] = round(time.monotonic() - began, 1)
    (lab.run / "screen-install.log").write_text(out)
    figures["installer_exit"] = rc
    figures["installer_said"] = [line.strip() for line in out.splitlines() if "screen" in line][-4:]
    _rc, figures["screen_settings"] = machine.sh(f"grep -E '^(bilingual|theme|language) ' {KIOSK_TOML}")
    if rc != 0:
        machine.stop()
        return {"verdict": "fail", "why": f"the installer failed (see {lab.run / 'screen-install.log'})", **figures}
    before = ready_count(machine)
    machine.sh("systemctl reboot", background=True)
    if not machine.exited(300):
        machine.stop()
        return {"verdict": "fail", "why": "the card did not go down for the reboot in 300 s", **figures}
    machine.stop()
    machine = lab.boot(disk, "scenario5-wayland")
    machine.wait_for({"login": " login:"}, "login", lab.timeout)
    figures["login_prompt_s"] = machine.seen.get("login")
    machine.agent(60)
    figures["kiosk_ready_s"] = wait_ready(machine, before, min(lab.timeout, 300))
    if figures["kiosk_ready_s"] is None:
        figures["diagnosis"] = diagnose(machine, before)
    figures["ratio"] = (round(figures["kiosk_ready_s"] / figures["login_prompt_s"], 2)
                        if figures["kiosk_ready_s"] and figures["login_prompt_s"] else None)
    _rc, units = machine.sh("systemctl is-active " + " ".join(SERVICES))
    figures["units"] = dict(zip(SERVICES, units.split(), strict=False))
    _rc, figures["processes"] = machine.sh("ps -o user=,comm= -C cage,foot,bookcorner | sort | uniq -c")
    time.sleep(5)  # the first frame drawn after "ready"
    pictures = {"idle": screenshot(machine, lab.run / "kiosk-idle-wayland.png")}
    with QMP(machine.qmp_path) as qmp:
        qmp.type(CHILD_CARD)
    time.sleep(4)
    pictures["card"] = screenshot(machine, lab.run / "kiosk-card-wayland.png")
    with QMP(machine.qmp_path) as qmp:
        qmp.type(DEMO_BOOK)
    loan: list[str] = []
    deadline = time.monotonic() + 90  # (each look is a Python start in a TCG guest: seconds, not a tick)
    while not loan and time.monotonic() < deadline:
        loan = loans_of(machine, CHILD_CARD)
        time.sleep(1)
    time.sleep(1)
    pictures["borrowed"] = screenshot(machine, lab.run / "kiosk-borrowed-wayland.png")
    figures["pictures"] = pictures
    figures["colours"] = {name: distinct_colours(lab.run / path.rsplit("/", 1)[-1]) for name, path in pictures.items()}
    figures["loan_typed_through_cage"] = loan
    _rc, figures["kiosk_log"] = machine.sh(f"tail -5 {KIOSK_LOG}")
    _rc, figures["unit_log"] = machine.sh(f"journalctl -b -u {WAYLAND_UNIT} --no-pager -o cat | tail -8")
    machine.qmp("quit")
    machine.stop()
    (lab.run / "scenario5.log").write_text(machine.text())
    problems = []
    if list(figures["units"].values()) != ["active"] * len(SERVICES):
        problems.append(f"units: {figures['units']}")
    if figures["kiosk_ready_s"] is None:
        problems.append("the kiosk never said it was ready under cage")
    if min(figures["colours"].values()) < 3:
        problems.append(f"a blank screen: {figures['colours']}")
    if not loan:
        problems.append("the card and book typed at the screen made no loan")
    if problems:
        figures["why"] = "; ".join(problems)
    # the glyphs themselves are judged by looking at the pictures (docs/operations.md, "The lab")
    return {"verdict": "fail" if problems else "pass", **figures}
