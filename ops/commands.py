"""``bookcorner udev-rules``, ``doctor``, ``backup`` and ``restore``: running a kiosk.

Exit codes: 0 done (doctor: nothing wrong), 1 doctor found a problem, 2 a usage or
configuration mistake, 3 the data could not be read or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bookcorner.cli import fail as _fail
from bookcorner.cli import load_settings as _settings
from bookcorner.i18n import _

EXIT_DONE, EXIT_PROBLEM, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("udev-rules", help=_("print (or write) the udev rules that give the configured "
                                                       "scanner and reader stable names and the kiosk user access"))
    rules.add_argument("--reader-usb", metavar="VENDOR:PRODUCT",
                       help=_("the USB ids of a USB-serial card reader, as lsusb shows them, e.g. 10c4:ea60"))
    rules.add_argument("--user", default="bookcorner", help=_("the kiosk's user (default: bookcorner)"))
    rules.add_argument("--output", metavar="FILE", help=_("write the rules to this file instead of printing them"))
    rules.set_defaults(handler=_udev_rules)

    doctor = subparsers.add_parser("doctor", help=_("check this kiosk (devices, permissions, disk, clock, server, "
                                                    "journal, waiting events) and say how to fix what is wrong"))
    doctor.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    doctor.add_argument("--user", metavar="NAME",
                        help=_("the user the kiosk runs as (default: bookcorner if it exists, else you)"))
    doctor.add_argument("--min-free-mb", type=int, default=64, metavar="MB",
                        help=_("warn when the data partition has less free space than this (default 64)"))
    doctor.add_argument("--central-db", metavar="URL",
                        help=_("the central server's database, to check its bridge to the school's library system "
                               "(default: that of the central server installed on this machine, if any)"))
    doctor.add_argument("--json", action="store_true", help=_("print the findings as JSON"))
    doctor.set_defaults(handler=_doctor)

    backup = subparsers.add_parser("backup", help=_("copy the kiosk's data into one file (safe while the kiosk runs)"))
    backup.add_argument("--to", required=True, metavar="PATH", help=_("a folder (on a USB stick) or a file name"))
    backup.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    backup.set_defaults(handler=_backup)

    restore = subparsers.add_parser("restore", help=_("put a backup back onto an empty data directory (stop the "
                                                      "kiosk and the sync daemon first)"))
    restore.add_argument("archive", metavar="FILE", help=_("the file `bookcorner backup` wrote"))
    restore.add_argument("--data-dir", metavar="DIR", help=_("the kiosk's data directory (default: from the config)"))
    restore.add_argument("--user", metavar="NAME",
                         help=_("run with sudo: the user who gets the restored files (default: the data directory's "
                                "owner, else bookcorner)"))
    restore.set_defaults(handler=_restore)

    install = subparsers.add_parser("install", help=_("install (or upgrade) bookcorner on Raspberry Pi OS or Debian "
                                                      "(user, data directory, program, systemd units, udev rules); "
                                                      "safe to run again"))
    uninstall = subparsers.add_parser("uninstall", help=_("remove the program, units and rules; the data, the "
                                                          "settings and the user stay"))
    for parser in (install, uninstall):
        parser.add_argument("--root", default="/", metavar="DIR",
                            help=_("a directory standing for / (for tests; default /)"))
    install.add_argument("--wheelhouse", metavar="DIR",
                         help=_("install the pinned dependencies from this folder of wheels, offline"))
    install.add_argument("--reader-usb", metavar="VENDOR:PRODUCT",
                         help=_("the USB ids of a USB-serial card reader, as lsusb shows them, e.g. 10c4:ea60"))
    install.add_argument("--python", metavar="PATH",
                         help=_("the Python the program runs on (default: the one running this; on the Pi "
                                "/usr/bin/python3)"))
    install.add_argument("--role", choices=["kiosk", "central", "both"],
                         help=_("kiosk: a book corner; central: the library computer's server; both: one machine "
                                "doing both (default: what is installed, else kiosk)"))
    install.add_argument("--screen", choices=["auto", "console", "wayland"],
                         help=_("the kiosk's screen on tty1: wayland (cage + foot, shows Chinese), console (the bare "
                                "console, English alone) or auto: wayland where there is a display (/dev/dri/card*) "
                                "and its packages can be installed (default: what is installed, else auto)"))
    install.add_argument("--school", metavar="SLUG",
                         help=_("with --role both on a district's server: the school whose kiosk this is (default: "
                                "the school its credential names, else the first school)"))
    install.set_defaults(handler=_install)
    uninstall.set_defaults(handler=_uninstall)



def _udev_rules(args: argparse.Namespace) -> int:
    from bookcorner.ops.udev import devices_from_config, render_rules

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


def _default_user() -> str:
    import getpass
    import pwd

    try:
        pwd.getpwnam("bookcorner")
        return "bookcorner"
    except KeyError:
        return getpass.getuser()


def _doctor(args: argparse.Namespace) -> int:
    import json

    from bookcorner.ops.doctor import OK, PROBLEM, SKIPPED, WARN, Context, run_checks, systemd_running
    from bookcorner.ops.install import central_database

    settings = _settings(args)
    ctx = Context(data_dir=Path(args.data_dir) if args.data_dir else settings.data_dir,
                  user=args.user or _default_user(), server_url=settings.sync.server_url, devices=settings.devices,
                  min_free_bytes=args.min_free_mb * 1024 * 1024,
                  connect_timeout_s=min(settings.sync.connect_timeout_s, 5.0), systemd=systemd_running(),
                  central_db=args.central_db or central_database() or "")
    findings = run_checks(ctx)
    if args.json:
        print(json.dumps([finding.as_dict() for finding in findings], ensure_ascii=False, indent=1))
    else:
        labels = {OK: _("ok"), WARN: _("look"), PROBLEM: _("PROBLEM"), SKIPPED: _("not checked")}
        for finding in findings:
            print(f"[{labels[finding.level]}] {finding.message}")
            if finding.fix and finding.level in (WARN, PROBLEM):
                print("    " + _("fix: {fix}").format(fix=finding.fix))
        problems = sum(finding.level == PROBLEM for finding in findings)
        print(_("{count} problem(s) found").format(count=problems) if problems else _("nothing is wrong"))
    return EXIT_PROBLEM if any(finding.level == PROBLEM for finding in findings) else EXIT_DONE


def _backup(args: argparse.Namespace) -> int:
    from bookcorner.ops.backup import BackupError, make_backup

    settings = _settings(args)
    root = Path(args.data_dir) if args.data_dir else settings.data_dir
    target = Path(args.to)
    if not target.is_dir() and not target.parent.is_dir():
        _fail(_("{path}: no such folder (is the USB stick mounted?)").format(path=target.parent), EXIT_USAGE)
    try:
        done = make_backup(root, target)
    except BackupError as error:
        _fail(str(error), EXIT_STORE)
    except OSError as error:
        _fail(_("cannot back up {path}: {error}").format(path=root, error=error.strerror or error), EXIT_STORE)
    print(_("wrote {path}: {files} file(s), events up to number {seq} ({waiting} not yet on the server)").format(
        path=done.path, files=done.files, seq=done.last_seq, waiting=done.last_seq - done.acked_seq))
    return EXIT_DONE


def _restore(args: argparse.Namespace) -> int:
    import os

    from bookcorner.ops.backup import BackupError, restore_backup

    settings = _settings(args)
    root = Path(args.data_dir) if args.data_dir else settings.data_dir
    owner = _owner(root, args.user) if os.geteuid() == 0 else None
    try:
        done = restore_backup(Path(args.archive), root, owner)
    except BackupError as error:
        _fail(str(error), EXIT_STORE)
    print(_("restored {files} file(s) into {path}: events up to number {seq} ({waiting} not yet on the "
            "server)").format(files=done.files, path=root, seq=done.last_seq, waiting=done.last_seq - done.acked_seq))
    print(_("the kiosk goes on as a restored journal: at its next sync it sends what the server lacks and takes "
            "back from the server the loans made after the backup; `bookcorner doctor` shows the restore until "
            "you have seen it (`bookcorner journal seen`)"))
    if owner is not None:
        print(_("the restored files belong to {user}, the kiosk's user").format(user=_user_name(owner[0])))
    return EXIT_DONE


def _owner(data_dir: Path, user: str | None) -> tuple[int, int] | None:
    """Who gets what root restores: the named user, else the data directory's owner (not
    root), else the user bookcorner; None when there is none of these."""
    import pwd

    if user:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            _fail(_("there is no user {user} on this computer").format(user=user), EXIT_USAGE)
        return entry.pw_uid, entry.pw_gid
    if data_dir.is_dir() and data_dir.stat().st_uid != 0:
        return data_dir.stat().st_uid, data_dir.stat().st_gid
    try:
        entry = pwd.getpwnam("bookcorner")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _report(steps) -> None:
    """Each step as it is done (so a failure comes after what was done before it)."""
    changes = 0
    for step in steps:
        print(("* " + _("changed: {what}") if step.changed else "  " + _("already so: {what}")).format(what=step.what),
              flush=True)
        changes += step.changed
    print(_("{count} change(s)").format(count=changes) if changes else _("nothing to change"))


def _installer(args: argparse.Namespace):
    import os

    from bookcorner.ops.install import Installer

    if os.geteuid() != 0:
        _fail(_("run it as root: sudo bookcorner {command}").format(command=args.command), EXIT_USAGE)
    root = Path(args.root)
    if not (root / "etc" / "passwd").is_file():
        _fail(_("{path} has no etc/passwd: not a system's root directory").format(path=root), EXIT_USAGE)
    return Installer(root, wheelhouse=Path(args.wheelhouse) if getattr(args, "wheelhouse", None) else None,
                     reader_usb=getattr(args, "reader_usb", None), role=getattr(args, "role", None),
                     screen=getattr(args, "screen", None), school=getattr(args, "school", None),
                     python=getattr(args, "python", None) or sys.executable)


def _install(args: argparse.Namespace) -> int:
    from bookcorner.ops.install import InstallError

    try:
        _report(_installer(args).install())
    except (InstallError, ValueError) as error:
        _fail(str(error), EXIT_STORE)
    return EXIT_DONE


def _uninstall(args: argparse.Namespace) -> int:
    from bookcorner.ops.install import InstallError

    try:
        _report(_installer(args).uninstall())
    except InstallError as error:  # a service that would not stop: its program stays
        _fail(str(error), EXIT_STORE)
    print(_("kept: the data in /var/lib/bookcorner, the settings in /etc/bookcorner and the user bookcorner"))
    return EXIT_DONE
