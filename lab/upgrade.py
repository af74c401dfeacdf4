"""Scenario 6 of the lab: an upgrade in place, as docs/operations.md ("Upgrading") tells a school.

A card is installed from an older commit (``OLD_COMMIT``, its release unpacked from ``git archive``)
by that commit's own installer, ``--role both``, with the demo school on the kiosk and on the
central server beside it, exactly as the lab installs the working tree. That commit's central
database stops at migration 0010, so the upgrade must run 0011 onwards; its journal is the
same schema (``journal migrate`` runs and must find nothing to change).

Booted, the old kiosk lends books and takes one back (``bookcorner circ``, as the kiosk's user,
the screen stopped meanwhile: the journal has one writer) and the sync daemon carries them to
the central server. Then the new release comes in on a second disk (a USB stick's part: the
release as unpacked from this checkout and its wheelhouse), is copied to the card and its
``scripts/install`` run, with no arguments but the wheelhouse (the role is remembered), timed.
Reboot: every loan must still be in the journal and on the central server, the central
database at the newest migration, the three units running and the kiosk at "Tap your card".
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bookcorner.ops.release import copy_release
from lab.run import (
    CACHE,
    CENTRAL_DB,
    CHILD_CARD,
    DEMO_BOOK,
    DEMO_CARD,
    HERE,
    IDLE_WORDS,
    ROOT,
    UNITS,
    LabFailure,
    as_kiosk_user,
    boot_figures,
    digest,
    lab_lines,
    log,
    make_disk,
    prepare,
    tty1,
)

if TYPE_CHECKING:
    from lab.run import Lab, Machine

#: the older release: main as it landed on 2026-12-04 (CI passed), the same locks as the working tree
#: (the lab's wheelhouse serves both); its central database is at migration 0010, the working tree's
#: later. (b70836e, before it, installed no pairing: `--role both` left the kiosk without the server's
#: address or a credential, and its loans never reached the server, as a school's would not have.)
OLD_COMMIT = "f521b26fe2ab8e245548a5d2dab82c5c20f806b2"
#: the bare console, as the lab's own card (scenario 6 reads tty1's text): the base carries cage and foot
#: for scenario 5, so the old installer's ``auto`` chose cage + foot, and the kiosk never showed on
#: tty1 before the upgrade or after it (the seat fault scenario 5 found)
OLD_INSTALL_ARGS = "--screen console"
#: what the old kiosk records: (card, book) loans, then the books given back
LOANS = ((DEMO_CARD, DEMO_BOOK), (DEMO_CARD, "30732000100091"), (DEMO_CARD, "30732000100117"),
         (CHILD_CARD, "30732000100125"))
RETURNS = ("30732000100117",)
#: where the new release is unpacked on the card, as a technician would
UNPACKED = "/var/tmp/bookcorner-release"
DATA = "/var/lib/bookcorner"
#: every event in the kiosk's journal (its id), read with the installed program
JOURNAL_IDS = ("/opt/bookcorner/venv/bin/python -c 'from bookcorner.journal.journal import JournalReader; "
               f"[print(r[\"event_id\"]) for r in JournalReader(\"{DATA}/journal\").records_after(0)]'")
CENTRAL_QUERY = ("import json, sqlite3; db = sqlite3.connect('file:" + CENTRAL_DB + "?mode=ro', uri=True); "
                 "db.row_factory = sqlite3.Row; "
                 "print(json.dumps({'version': [r[0] for r in db.execute('select version_num from alembic_version')], "
                 "'loans': [dict(r) for r in db.execute('select * from loans')]}, default=str))")


def newest_migration() -> str:
    """The working tree's head revision (the one no other revision names as its down_revision)."""
    revisions, downs = set(), set()
    for path in (ROOT / "central" / "migrations" / "versions").glob("0*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(("revision", "down_revision")):
                value = line.split("=", 1)[1].strip().strip("'\"")
                (revisions if line.startswith("revision") else downs).add(value)
    (head,) = revisions - downs
    return head


def old_release(folder: Path) -> Path:
    """``OLD_COMMIT`` as a release unpacked in ``folder``."""
    source = folder / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return copy_release(source, folder / "release")


def old_installed_image(lab: Lab) -> tuple[Path, dict]:
    """The blank card with ``OLD_COMMIT`` installed by its own installer (kept in the cache: it
    depends on the old commit, the base, the wheelhouse and the lab's agent, not the checkout)."""
    key = digest(OLD_COMMIT.encode(), OLD_INSTALL_ARGS.encode(), lab.rootfs.name.encode(), lab.wheels.name.encode(),
                 (HERE / "guest_agent.py").read_bytes())
    image = CACHE / f"installed-old-{OLD_COMMIT[:8]}-{key}.img"
    figures: dict = {"old_commit": OLD_COMMIT}
    if image.exists():
        figures["old_install"] = "cached"
        return image, figures
    for old in CACHE.glob(f"installed-old-{OLD_COMMIT[:8]}-*.img"):
        old.unlink()
    prepare(lab.rootfs, lab.wheels, lab.timeout, lab.arch.console, OLD_INSTALL_ARGS)
    release = lab.rootfs / "opt" / "lab" / "release"
    shutil.rmtree(release)
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(old_release(Path(scratch)), release, symlinks=True)
    disk = lab.run / "install-old.img"
    make_disk(lab.rootfs, disk)
    shutil.rmtree(lab.rootfs / "opt" / "lab")  # (the next card made from the base gets its own)
    log(f"scenario 6: installing the old release {OLD_COMMIT[:8]} with its own installer")
    machine = lab.boot(disk, "install-old")
    installed = machine.wait_for({"installed": "LAB install-exit"}, "installed", lab.timeout * 4)
    text = machine.text()
    figures["old_install_boot_s"] = machine.seen.get("installed")
    exits = {word: next(iter(lab_lines(text, word)), None) for word in ("install-exit", "demo-exit",
                                                                        "central-demo-exit")}
    figures["old_install_exits"] = exits
    (lab.run / "install-old.log").write_text("\n".join(line[8:] for line in text.splitlines()
                                                        if line.startswith("LAB-LOG")))
    powered_off = installed and machine.exited(180)
    machine.stop()
    if not powered_off or set(exits.values()) != {"0"}:
        raise LabFailure(f"the old release did not install (see {lab.run / 'install-old.log'})", figures)
    disk.replace(image)
    return image, figures


def release_stick(lab: Lab) -> Path:
    """The new release (this checkout) and its wheelhouse on a disk of their own: the guest has
    no network, so the release comes as a school's would on a USB stick."""
    stick = lab.run / "release-stick"
    shutil.rmtree(stick, ignore_errors=True)
    stick.mkdir()
    copy_release(ROOT, stick / "release")
    shutil.copytree(lab.wheels, stick / "wheelhouse")
    image = lab.run / "release-stick.img"
    image.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "release", "-d", str(stick), str(image), "1G"], check=True)
    shutil.rmtree(stick)
    return image


def snapshot(machine: Machine) -> dict:
    """What the card holds: each journal event's id, each card's loans (``circ status``), the
    central server's loans and migration."""
    rc, ids = machine.sh(JOURNAL_IDS, timeout=300)
    if rc != 0:
        raise LabFailure(f"the journal could not be read: {ids[-300:]}", {})
    held = {}
    for card in sorted({card for card, _book in LOANS}):
        rc, out = machine.sh(as_kiosk_user("circ", "status", card, "--json", "--data-dir", DATA), timeout=300)
        if rc != 0:
            raise LabFailure(f"circ status {card}: {out[-300:]}", {})
        held[card] = sorted(loan["item_id"] for loan in json.loads(out.splitlines()[-1])["loans"] if loan["item_id"])
    rc, out = machine.sh("python3 -c " + shlex.quote(CENTRAL_QUERY))
    if rc != 0:
        raise LabFailure(f"the central database could not be read: {out[-300:]}", {})
    central = json.loads(out.splitlines()[-1])
    return {"events": ids.split(), "held": held, "central": central}


def central_loans(found: dict, columns: set[str]) -> list[dict]:
    return sorted(({key: loan[key] for key in sorted(columns)} for loan in found["central"]["loans"]),
                  key=lambda loan: json.dumps(loan, sort_keys=True, default=str))


def wait_on_server(machine: Machine, loans: int, returned: int, timeout: float) -> float | None:
    """Seconds until the central server holds ``loans`` loans of which ``returned`` returned."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        rc, out = machine.sh("python3 -c " + shlex.quote(CENTRAL_QUERY))
        if rc == 0:
            rows = json.loads(out.splitlines()[-1])["loans"]
            if len(rows) >= loans and sum(row.get("returned_at") is not None for row in rows) >= returned:
                return round(time.monotonic() - began, 1)
        time.sleep(3)
    return None


def upgrade_in_place(lab: Lab) -> dict:
    """Scenario 6 (see the module's docstring)."""
    image, figures = old_installed_image(lab)
    disk = lab.copy_of(image, "scenario6")
    stick = release_stick(lab)
    stick_drive = ("-drive", f"file={stick},format=raw,if=virtio,readonly=on")
    machine = lab.boot(disk, "scenario6-old", stick_drive)
    figures["old_boot"] = boot_figures(machine, lab.timeout)
    machine.agent(60)
    figures["old_screen"] = tty1(machine)
    # the old kiosk records loans and a return (its screen stopped meanwhile: one journal writer)
    machine.sh("systemctl stop bookcorner-kiosk")
    said = []
    for card, book in LOANS:
        rc, out = machine.sh(as_kiosk_user("circ", "checkout", card, book, "--data-dir", DATA), timeout=300)
        said.append(f"checkout {card} {book}: exit {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
    for book in RETURNS:
        rc, out = machine.sh(as_kiosk_user("circ", "return", book, "--data-dir", DATA), timeout=300)
        said.append(f"return {book}: exit {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
    figures["recorded"] = said
    machine.sh("systemctl start bookcorner-kiosk")
    figures["old_loans_on_server_s"] = wait_on_server(machine, len(LOANS), len(RETURNS), 300)
    if figures["old_loans_on_server_s"] is None:
        raise LabFailure("the old release's sync daemon did not bring the loans to the central server in 300 s",
                         figures)
    before = snapshot(machine)
    figures["before"] = {"journal_events": len(before["events"]), "held": before["held"],
                         "central_loans": len(before["central"]["loans"]),
                         "central_returned": sum(row.get("returned_at") is not None
                                                 for row in before["central"]["loans"]),
                         "central_migration": before["central"]["version"]}
    # the upgrade, as docs/operations.md says: the new release unpacked, its installer run
    rc, out = machine.sh(f"mkdir -p /mnt/stick && mount -o ro /dev/vdb /mnt/stick && rm -rf {UNPACKED} && "
                         f"cp -a /mnt/stick/release {UNPACKED} && mkdir -p /var/tmp/wheelhouse && "
                         "cp -a /mnt/stick/wheelhouse/. /var/tmp/wheelhouse/ && umount /mnt/stick", timeout=600)
    if rc != 0:
        raise LabFailure(f"the new release could not be copied from its disk: {out[-400:]}", figures)
    log("scenario 6: upgrading in place (the new release's scripts/install)")
    rc, out = machine.sh(f"cd {UNPACKED} && s=$(date +%s.%N) && ./scripts/install --wheelhouse /var/tmp/wheelhouse; "
                         "rc=$?; echo \"LAB-UPGRADE $rc $(echo \"$(date +%s.%N) - $s\" | python3 -c "
                         "'import sys; print(round(eval(sys.stdin.read()), 1))')\"", timeout=2400)
    (lab.run / "upgrade.log").write_text(out)
    mark = [line.split() for line in out.splitlines() if line.startswith("LAB-UPGRADE ")]
    figures["upgrade_exit"] = int(mark[-1][1]) if mark else rc
    figures["upgrade_s"] = float(mark[-1][2]) if mark else None
    figures["installer_said"] = [line for line in out.splitlines() if line.strip() and not line.startswith("LAB-")][-14:]
    if figures["upgrade_exit"] != 0:
        raise LabFailure(f"the upgrade failed (see {lab.run / 'upgrade.log'})", figures)
    _rc, figures["backups"] = machine.sh("ls /var/backups/bookcorner")
    # reboot (QEMU runs with -no-reboot: it ends, and the lab powers the same card on again)
    machine.sh("systemctl reboot", background=True)
    if not machine.exited(300):
        raise LabFailure("the card did not go down for the reboot in 300 s", figures)
    machine.stop()
    machine = lab.boot(disk, "scenario6-new")
    figures["new_boot"] = boot_figures(machine, lab.timeout)
    machine.agent(60)
    figures["new_screen"] = tty1(machine)
    rc, units = machine.sh("systemctl is-active " + " ".join(UNITS))
    figures["units"] = dict(zip(UNITS, units.split(), strict=False))
    after = snapshot(machine)
    rc, check = machine.sh(as_kiosk_user("journal", "check", "--data-dir", DATA), timeout=400)
    figures["journal_check"] = check.strip().splitlines()[-1] if check.strip() else f"exit {rc}"
    journal_ok = rc == 0
    _rc, figures["program"] = machine.sh("cat /opt/bookcorner/venv/.bookcorner-install")
    columns = set.intersection(*(set(row) for row in before["central"]["loans"] + after["central"]["loans"]))
    lost_events = sorted(set(before["events"]) - set(after["events"]))
    lost_central = [row for row in central_loans(before, columns) if row not in central_loans(after, columns)]
    figures["after"] = {"journal_events": len(after["events"]), "held": after["held"],
                        "central_loans": len(after["central"]["loans"]),
                        "central_returned": sum(row.get("returned_at") is not None for row in after["central"]["loans"]),
                        "central_migration": after["central"]["version"]}
    figures["newest_migration"] = newest_migration()
    figures["journal_events_lost"] = lost_events
    figures["central_loans_lost"] = lost_central
    machine.qmp("quit")
    machine.stop()
    problems = []
    if lost_events or after["held"] != before["held"]:
        problems.append("the journal lost loans")
    if lost_central:
        problems.append("the central server lost loans")
    if after["central"]["version"] != [figures["newest_migration"]]:
        problems.append(f"the central database is at {after['central']['version']}, not {figures['newest_migration']}")
    if list(figures["units"].values()) != ["active"] * len(UNITS):
        problems.append(f"units: {figures['units']}")
    if IDLE_WORDS not in figures["new_screen"] or "kiosk" not in machine.seen:
        problems.append("the kiosk is not at its idle screen after the reboot")
    if not journal_ok:
        problems.append(f"journal check: {figures['journal_check']}")
    if problems:
        figures["why"] = "; ".join(problems)
    return {"verdict": "fail" if problems else "pass", **figures}
