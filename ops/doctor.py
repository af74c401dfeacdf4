"""``bookcorner doctor``: what is wrong with this kiosk, in plain words, with the fix.

Each check looks at the real thing (the device files and who may open them, the data
partition, the kernel's clock state, a TCP connection to the server, every journal
segment, the sync status, systemd's view of the services) and returns findings: ``ok``,
``warn`` (works, but someone should look), ``problem`` (the corner does not work as it
should) or ``skipped`` (could not be checked here, which is neither).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bookcorner.i18n import _

OK, WARN, PROBLEM, SKIPPED = "ok", "warn", "problem", "skipped"
#: below this much free space on the data partition, the journal may soon fail to write
MIN_FREE_BYTES = 64 * 1024 * 1024
PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Finding:
    check: str  # devices | permissions | disk | data_owner | clock | server | journal | pending | services | bridge
    #              | partitions (the central database)
    level: str  # ok | warn | problem | skipped
    message: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    data_dir: Path
    user: str
    server_url: str
    devices: object  # devices.config.DevicesConfig
    min_free_bytes: int = MIN_FREE_BYTES
    connect_timeout_s: float = 3.0
    #: systemd is the init system here (services can be asked about)
    systemd: bool = False
    #: the central server's database on a machine with the central role (central or both); empty: none here
    central_db: str = ""


def run_checks(ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for check in (check_devices, check_disk, check_data_owner, check_clock, check_server, check_journal,
                  check_journal_history, check_pending, check_services, check_bridge, check_partitions):
        findings.extend(check(ctx))
    return findings


# -- devices and permissions ---------------------------------------------------------------------

def _user_ids(user: str) -> tuple[int, set[int]]:
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {group.gr_gid for group in grp.getgrall() if user in group.gr_mem}
    return entry.pw_uid, groups


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def may_open(path: Path, user: str) -> tuple[bool, str]:
    """Whether ``user`` may read and write ``path`` by its owner, group and mode; and the
    file's group (what the user would need)."""
    info = os.stat(path)
    uid, gids = _user_ids(user)
    mode = stat.S_IMODE(info.st_mode)
    if uid == 0:
        allowed = True
    elif info.st_uid == uid:
        allowed = mode & 0o600 == 0o600
    elif info.st_gid in gids:
        allowed = mode & 0o060 == 0o060
    else:
        allowed = mode & 0o006 == 0o006
    return allowed, _group_name(info.st_gid)


def configured_devices(devices) -> list[tuple[str, str, bool]]:
    """(what, path, is an input device) for every device the configuration names by a path."""
    found = []
    for section, what, link in ((devices.scanner, _("the barcode scanner"), "/dev/bookcorner-scanner"),
                                (devices.card_keyboard, _("the card reader (keyboard type)"),
                                 "/dev/bookcorner-card-keyboard")):
        if section.path:
            found.append((what, section.path, True))
        elif section.vendor and section.product:
            found.append((what, link, True))
    if devices.reader.protocol != "none":
        found.append((_("the serial card reader"), devices.reader.port, False))
    return found


def check_devices(ctx: Context) -> list[Finding]:
    devices = configured_devices(ctx.devices)
    if not devices:
        return [Finding("devices", OK, _("no scanner or reader is configured: scans and cards are read as "
                                         "keystrokes on the kiosk's screen"))]
    findings = []
    for what, path, is_input in devices:
        if not os.path.exists(path):
            findings.append(Finding("devices", PROBLEM, _("{what} is not there ({path})").format(what=what, path=path),
                                    _("plug it in (a USB port on the Pi, not a hub without power) and see "
                                      "`bookcorner devices list`; a /dev/bookcorner-… name needs the udev rules")))
            continue
        try:
            allowed, group = may_open(Path(path), ctx.user)
        except KeyError:
            findings.append(Finding("permissions", PROBLEM, _("there is no user {user} on this computer").format(
                user=ctx.user), _("run the installer, or name the kiosk's user with --user")))
            return findings
        if allowed:
            findings.append(Finding("devices", OK, _("{what} is there ({path})").format(what=what, path=path)))
        elif is_input:
            findings.append(Finding("permissions", PROBLEM,
                                    _("the kiosk's user {user} may not read {what} ({path}, group {group})").format(
                                        user=ctx.user, what=what, path=path, group=group),
                                    _("set the device's vendor and product in the configuration and install the "
                                      "udev rules: sudo bookcorner udev-rules --output "
                                      "/etc/udev/rules.d/70-bookcorner.rules, then unplug and plug it in")))
        else:
            findings.append(Finding("permissions", PROBLEM,
                                    _("the kiosk's user {user} may not open {what} ({path}): it is not in the "
                                      "group {group}").format(user=ctx.user, what=what, path=path, group=group),
                                    _("sudo usermod -aG {group} {user}, then restart the kiosk "
                                      "(sudo systemctl restart bookcorner-kiosk)").format(group=group, user=ctx.user)))
    return findings


# -- the data partition -------------------------------------------------------------------------

def check_disk(ctx: Context) -> list[Finding]:
    if not ctx.data_dir.is_dir():
        return [Finding("disk", PROBLEM, _("the data directory {path} does not exist").format(path=ctx.data_dir),
                        _("run the installer, or set kiosk.data_dir in the configuration to the data partition"))]
    usage = shutil.disk_usage(ctx.data_dir)
    free_mb = usage.free // (1024 * 1024)
    probe = ctx.data_dir / f".doctor-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        return [Finding("disk", PROBLEM, _("nothing can be written to the data directory {path}: {error}").format(
            path=ctx.data_dir, error=error.strerror),
            _("free some space on the data partition (old exports, logs) or use a bigger SD card; "
              "if it is read-only, see the README on the data partition"))]
    finally:
        probe.unlink(missing_ok=True)
    if usage.free < ctx.min_free_bytes:
        return [Finding("disk", PROBLEM, _("the data partition is almost full: {free} MB free").format(free=free_mb),
                        _("free some space on the data partition (old exports, logs) or use a bigger SD card"))]
    return [Finding("disk", OK, _("{free} MB free on the data partition").format(free=free_mb))]


def may_write(path: Path, user: str) -> bool:
    """Whether ``user`` may change ``path`` (a file: write; a folder: write and enter)."""
    info = os.lstat(path)
    uid, gids = _user_ids(user)
    need = 0o3 if stat.S_ISDIR(info.st_mode) else 0o2
    mode = stat.S_IMODE(info.st_mode)
    if uid == 0 or stat.S_ISLNK(info.st_mode):
        return True
    if info.st_uid == uid:
        return (mode >> 6) & need == need
    if info.st_gid in gids:
        return (mode >> 3) & need == need
    return mode & need == need


def check_data_owner(ctx: Context, limit: int = 5000) -> list[Finding]:
    """Everything in the data directory must be the kiosk user's to change (a restore or a
    repair run with sudo leaves root's files behind, and the kiosk then cannot record)."""
    if not ctx.data_dir.is_dir():
        return []
    try:
        _user_ids(ctx.user)
    except KeyError:
        return []
    paths = [ctx.data_dir]
    for number, path in enumerate(ctx.data_dir.rglob("*")):
        if number >= limit:
            break
        paths.append(path)
    blocked = [path for path in paths if not may_write(path, ctx.user)]
    if not blocked:
        return []
    return [Finding("data_owner", PROBLEM, _("the kiosk's user {user} cannot change {count} file(s) in the data "
                                              "directory, e.g. {path}").format(user=ctx.user, count=len(blocked),
                                                                               path=blocked[0]),
                    _("sudo chown -R {user}: {path}").format(user=ctx.user, path=ctx.data_dir))]


# -- the clock --------------------------------------------------------------------------------------

def check_clock(ctx: Context) -> list[Finding]:
    from bookcorner.journal.clock import kernel_clock_synced

    if kernel_clock_synced():
        return [Finding("clock", OK, _("the clock is synchronised"))]
    return [Finding("clock", WARN, _("the clock is not synchronised (the Pi has no clock battery): times recorded "
                                     "now are corrected by the server later"),
                    _("connect the corner to the network; `timedatectl` shows whether the time is synchronised"))]


# -- the server -------------------------------------------------------------------------------------

def check_server(ctx: Context) -> list[Finding]:
    if not ctx.server_url:
        return [Finding("server", OK, _("no central server is configured: carry the events on a USB stick "
                                        "(bookcorner export-batch)"))]
    parts = urlsplit(ctx.server_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if not host or port is None:
        return [Finding("server", PROBLEM, _("the server address {url} cannot be read").format(url=ctx.server_url),
                        _("set [sync] server_url to e.g. https://library.example-school.cn:8443"))]
    try:
        with socket.create_connection((host, port), timeout=ctx.connect_timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        return [Finding("server", PROBLEM, _("the central server {url} cannot be reached: {error}").format(
            url=ctx.server_url, error=reason),
            _("check the network (cable or Wi-Fi), that the library computer is on and runs the bookcorner server, "
              "and [sync] server_url; meanwhile the corner keeps working and keeps the events"))]
    return [Finding("server", OK, _("the central server {url} answers").format(url=ctx.server_url))]


# -- the journal and what waits to be sent --------------------------------------------------------

def _last_seq(ctx: Context) -> int:
    from bookcorner.journal.journal import JournalReader

    journal = ctx.data_dir / "journal"
    return JournalReader(journal).last_seq() if journal.is_dir() else 0


def check_journal(ctx: Context) -> list[Finding]:
    from bookcorner.journal.journal import Damage, JournalReader
    from bookcorner.journal.storage import StoreError

    journal = ctx.data_dir / "journal"
    if not journal.is_dir():
        return [Finding("journal", OK, _("no event has been recorded yet"))]
    damage: list[Damage] | list[StoreError | OSError]
    try:
        damage = JournalReader(journal).check()
    except (StoreError, OSError) as error:
        damage = [error]
    if damage:
        first = damage[0]
        detail = f"{first.segment}: {first.detail}" if isinstance(first, Damage) else str(first)
        return [Finding("journal", PROBLEM, _("the journal is damaged ({count} problem(s); first: {detail})").format(
            count=len(damage), detail=detail),
            _("stop the kiosk (sudo systemctl stop bookcorner-kiosk bookcorner-syncd), run `bookcorner journal "
              "repair`, then start it again; the damaged part is kept aside"))]
    return [Finding("journal", OK, _("the journal is sound ({count} event(s))").format(count=_last_seq(ctx)))]


def check_journal_history(ctx: Context) -> list[Finding]:
    """A journal that went back in time (restored, repaired, copied back), until the
    librarian has seen what it meant."""
    from bookcorner.sync.journal_notice import unseen

    notice = unseen(ctx.data_dir)
    if notice is None:
        return []
    return [Finding("journal", WARN, notice.describe(), notice.fix)]


def check_pending(ctx: Context) -> list[Finding]:
    from bookcorner.journal.storage import StoreError
    from bookcorner.sync.status import read_status

    try:
        status = read_status(ctx.data_dir)
        waiting = status.waiting(_last_seq(ctx))
    except (StoreError, OSError) as error:
        return [Finding("pending", PROBLEM, _("the sync status cannot be read: {error}").format(error=error),
                        _("restart the sync daemon (sudo systemctl restart bookcorner-syncd)"))]
    if not waiting:
        return [Finding("pending", OK, _("every event has reached the server"))]
    why = _(" The last try failed: {error}").format(error=status.last_error) if status.last_error else ""
    return [Finding("pending", WARN, _("{count} event(s) wait to be sent to the server.").format(count=waiting) + why,
                    _("they are sent by themselves once the server can be reached; or carry them on a USB stick: "
                      "bookcorner export-batch --to /media/usb"))]


# -- the services -------------------------------------------------------------------------------------

SERVICE_PROPERTIES = ("LoadState", "ActiveState", "SubState", "UnitFileState", "Result", "NRestarts")


def systemd_running() -> bool:
    """Whether systemd is PID 1 (its own test: sd_booted)."""
    return os.path.isdir("/run/systemd/system")


def service_state(unit: str) -> dict[str, str]:
    """systemd's view of ``unit`` (``systemctl show``: KEY=value lines)."""
    done = subprocess.run(["systemctl", "show", *(f"--property={name}" for name in SERVICE_PROPERTIES), unit],
                          capture_output=True, text=True, timeout=10, check=False)
    return dict(line.partition("=")[::2] for line in done.stdout.splitlines() if "=" in line)


def check_services(ctx: Context) -> list[Finding]:
    """Each bookcorner service set to start at boot (or running): does it run, and has
    systemd had to restart it."""
    from bookcorner.ops.units import UNITS

    if not ctx.systemd or not shutil.which("systemctl"):
        return [Finding("services", SKIPPED, _("the services were not checked: systemd does not run this system"))]
    findings = []
    for unit in UNITS:
        try:
            state = service_state(unit)
        except (OSError, subprocess.SubprocessError) as error:
            return [Finding("services", SKIPPED, _("the services were not checked: {error}").format(error=error))]
        active, enabled = state.get("ActiveState", ""), state.get("UnitFileState", "")
        if state.get("LoadState") != "loaded" or (enabled != "enabled" and active in ("inactive", "")):
            continue  # not installed, or installed and not used on this machine
        restarts = int(state.get("NRestarts") or 0)
        logs = _("see why: sudo journalctl -b -u {unit} -n 50").format(unit=unit)
        if active == "active":
            if restarts:
                findings.append(Finding("services", WARN, _("{unit} runs, but systemd has had to restart it {count} "
                                                            "time(s)").format(unit=unit, count=restarts), logs))
            else:
                findings.append(Finding("services", OK, _("{unit} runs").format(unit=unit)))
        elif active == "failed":
            findings.append(Finding("services", PROBLEM, _("{unit} has stopped after an error ({result}; restarted "
                                                           "{count} time(s) before)").format(
                unit=unit, result=state.get("Result", "?"), count=restarts),
                logs + "; " + _("then: sudo systemctl restart {unit}").format(unit=unit)))
        elif active in ("activating", "deactivating", "reloading"):
            findings.append(Finding("services", WARN, _("{unit} is starting again ({count} restart(s) so far)").format(
                unit=unit, count=restarts), logs))
        else:
            findings.append(Finding("services", PROBLEM, _("{unit} is set to start at boot but is not running").format(
                unit=unit), _("sudo systemctl start {unit}; if it stops again, {logs}").format(unit=unit, logs=logs)))
    if not findings:
        findings.append(Finding("services", WARN, _("no bookcorner service is set to start at boot"),
                                _("run the installer (sudo scripts/install), or: sudo systemctl enable --now "
                                  "bookcorner-kiosk bookcorner-syncd")))
    return findings


# -- the replay bridge into the school's library system (a machine with the central role) -------------

#: loans waiting this long without an error: the central server is not sending them (it sends every few seconds)
BRIDGE_STALE = timedelta(minutes=15)


def check_bridge(ctx: Context, now: datetime | None = None) -> list[Finding]:
    """The central server's replay bridge (docs/sip2.md): off, on and sending, or failing with
    the library system's reason and the loans waiting in the outbox."""
    if not ctx.central_db:
        return []
    try:
        from bookcorner.central import db, zone
        from bookcorner.central.services import bridge
    except ModuleNotFoundError as missing:
        return [Finding("bridge", SKIPPED, _("the bridge to the school's library system was not checked: the central "
                                             "server's libraries are not installed ({name})").format(name=missing.name))]
    url = db.normalise_url(ctx.central_db)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return [Finding("bridge", PROBLEM, _("the central database {url} does not exist").format(url=db.shown_url(url)),
                        _("set BOOKCORNER_CENTRAL_DB in /etc/bookcorner/central.env to the server's database, or give "
                          "it with --central-db"))]
    store = db.Store(url, pool_size=1)
    try:
        chosen, counts, seen = bridge.settings(store), bridge.counts(store), bridge.state(store)
        oldest, local = bridge.oldest_waiting(store), zone.school_zone(store)
    except Exception as error:  # noqa: BLE001  (a refused login, a database not migrated, no server)
        return [Finding("bridge", PROBLEM, _("the central database {url} cannot be read: {error}").format(
            url=db.shown_url(url), error=(str(getattr(error, "orig", None) or error).splitlines() or ["?"])[0]),
            _("see that the database runs and `bookcorner central migrate --db URL` has brought it up to date"))]
    finally:
        store.dispose()
    if not chosen.enabled:
        return [Finding("bridge", OK, _("the bridge to the school's library system is off"))]
    system = f"{chosen.host}:{chosen.port}"
    waiting = counts["waiting"] + counts["sending"]
    since = ""
    if oldest is not None:
        oldest = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)
        since = oldest.astimezone(local).strftime("%Y-%m-%d %H:%M")
    backlog = _(" {count} loan(s) wait in the outbox, the oldest since {since}.").format(
        count=waiting, since=since) if waiting else ""
    if seen.failures:
        return [Finding("bridge", PROBLEM, _("the bridge cannot reach the library system {system}: {error}.").format(
            system=system, error=seen.last_error) + backlog,
            _("see that the library system runs and answers SIP2 there, and its address, login and password under "
              "Library system on the dashboard; the loans are sent by themselves, in order, once it answers"))]
    moment = now or datetime.now().astimezone()
    if oldest is not None and moment - oldest > BRIDGE_STALE:
        return [Finding("bridge", WARN, _("the bridge to the library system {system} has sent nothing for a while.")
                        .format(system=system) + backlog,
                        _("the central server sends them: see that it runs (sudo systemctl status "
                          "bookcorner-central.service)"))]
    return [Finding("bridge", OK, _("the bridge to the library system {system} works: {sent} loan(s) sent, {waiting} "
                                    "waiting, {refused} refused").format(system=system, sent=counts["sent"],
                                                                         waiting=waiting, refused=counts["refused"]))]


def check_partitions(ctx: Context) -> list[Finding]:
    """The central database's default partitions (PostgreSQL, issue 15): loans and events outside
    every school term's partition made so far are kept and found, but a report over their term
    reads the default partition too, and the upkeep cannot make that term's partition over them."""
    if not ctx.central_db:
        return []
    try:
        from bookcorner.central import db, partitions
    except ModuleNotFoundError:
        return []  # (check_bridge says the central server's libraries are missing)
    url = db.normalise_url(ctx.central_db)
    if not url.startswith("postgresql"):
        return []  # SQLite is never partitioned
    store = db.Store(url, pool_size=1)
    try:
        with store.reading() as conn:
            stray = partitions.default_rows(conn)
    except Exception as error:  # noqa: BLE001  (a refused login, a database not migrated, no server)
        return [Finding("partitions", SKIPPED, _("the partitions of the central database were not checked: {error}")
                        .format(error=(str(getattr(error, "orig", None) or error).splitlines() or ["?"])[0]))]
    finally:
        store.dispose()
    loans, events = stray.get("loans", 0), stray.get("events", 0)
    if not loans and not events:
        return [Finding("partitions", OK, _("every loan and event is in its school term's partition"))]
    return [Finding("partitions", WARN, _(
        "{loans} loan(s) and {events} event(s) sit in a default partition, outside every school term made so far "
        "(old loans imported, or a kiosk clock far off). They are kept and found, but reports over their term "
        "read them more slowly, and that term's partition cannot be made over them.").format(loans=loans, events=events),
        _("run `bookcorner central partitions --db URL`: it makes their terms' partitions and moves them there"))]
