"""``bookcorner central``: run the central server, and look after it.

    bookcorner central [--db URL] [--host H] [--port P] [--certfile F --keyfile F] [--timezone ZONE]
    bookcorner central add-kiosk ID [--name NAME] [--reissue]
    bookcorner central add-librarian NAME
    bookcorner central add-sip2-account LOGIN [--reissue]
    bookcorner central kiosks | reviews | import FILE... | load-reference FILE|--demo | migrate | anonymise

``--db``: a PostgreSQL URL (postgresql://user@host/db), an SQLite URL or a file path;
default $BOOKCORNER_CENTRAL_DB, else ~/.local/share/bookcorner-central/central.db.
Exit codes: 0 done, 1 refused (e.g. the kiosk exists, a file did not import), 2 usage,
3 the database could not be used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bookcorner.cli import fail
from bookcorner.i18n import _


def _fail(message: str, code: int) -> None:
    fail(message, code, "bookcorner central")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    central = subparsers.add_parser("central", help=_("run the central server (or manage it: add-kiosk, kiosks...)"))
    _register_serve(central)
    actions = central.add_subparsers(dest="central_command", metavar="ACTION")
    _register_kiosk_actions(actions)
    _register_data_actions(actions)
    _register_school_actions(actions)


def _database(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--db", metavar="URL", default=default,
                        help=_("the database: a postgresql:// URL, an sqlite:/// URL or a file "
                               "(default: $BOOKCORNER_CENTRAL_DB or ~/.local/share/bookcorner-central/central.db)"))


def _school_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--school", metavar="SLUG", default="",
                        help=_("the school of a district to act on (`bookcorner central schools` lists them; "
                               "default: the first school, the only one of a single-school server)"))


def _register_serve(central: argparse.ArgumentParser) -> None:
    """``bookcorner central`` itself: serve."""
    _database(central, None)
    central.add_argument("--host", default="127.0.0.1", help=_("address to listen on (default 127.0.0.1; 0.0.0.0: all)"))
    central.add_argument("--port", type=int, default=8443, help=_("port to listen on (0: any free port)"))
    central.add_argument("--certfile", metavar="PEM", help=_("TLS certificate (chain): serve HTTPS, as production must"))
    central.add_argument("--keyfile", metavar="PEM", help=_("the TLS certificate's private key"))
    central.add_argument("--workers", type=int, default=1, metavar="N",
                         help=_("server processes sharing the port (default 1; a busy district server: its CPUs)"))
    central.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    central.add_argument("--sip2-port", type=int, metavar="PORT",
                         help=_("also serve SIP2 (self-check machines) on this port of --host (0: any free port), "
                                "over TLS when --certfile is given; see docs/sip2.md"))
    central.add_argument("--sip2-encoding", default="utf-8", choices=["utf-8", "gb18030"],
                         help=_("the character set the self-check machines use (default utf-8)"))
    central.add_argument("--sip2-language", choices=["en", "zh_CN"],
                         help=_("the language of the SIP2 screen messages when a self-check machine asks for none "
                                "(default: the school's, that of its overdue notices)"))
    central.add_argument("--sip2-idle-timeout", type=float, default=300.0, metavar="SECONDS",
                         help=_("close a SIP2 session silent this long (default 300)"))
    central.add_argument("--timezone", metavar="ZONE",
                         help=_("the school's time zone, an IANA name such as Asia/Shanghai or Europe/London, kept in "
                                "the database for the server and the kiosks (default: as set before, else this "
                                "computer's own)"))
    # (defaults: central.config.Settings, not imported here: a kiosk's CLI has no server libraries)
    central.add_argument("--push-limit", type=int, metavar="N",
                         help=_("pushes one server process takes at once (default 8)"))
    central.add_argument("--push-queue", type=int, metavar="N",
                         help=_("pushes that may wait for a turn; beyond them a kiosk is told to come back later "
                                "(429) (default 64)"))
    central.add_argument("--push-wait", type=float, metavar="SECONDS",
                         help=_("how long a push waits for a turn before it is told to come back later (default 2)"))
    central.add_argument("--report-database", metavar="URL",
                         help=_("where the borrowing reports read: a hot standby of the database, so that a heavy "
                                "report never slows the kiosks' pushes (default: the database itself)"))
    central.add_argument("--busy-retry-after", type=int, metavar="SECONDS",
                         help=_("when busy, the kiosks are told to come back after at least this many seconds "
                                "(default 2; more when many wait)"))
    central.add_argument("--busy-retry-after-max", type=int, metavar="SECONDS",
                         help=_("when busy, the kiosks are told to come back after at most this many seconds "
                                "(default 120)"))
    central.add_argument("--district-every", type=float, metavar="SECONDS",
                         help=_("how often each school's figures for the district's page are counted (default 300; "
                                "also once at start)"))
    central.add_argument("--forwarded-allow-ips", metavar="ADDRESSES",
                         help=_("the reverse proxies (comma-separated addresses, * for any) whose X-Forwarded-For "
                                "and X-Forwarded-Proto are believed: the client's address and https (default "
                                "127.0.0.1)"))
    central.set_defaults(handler=_serve)


def _register_kiosk_actions(actions: argparse._SubParsersAction) -> None:
    """The actions on kiosks, librarians and reviews."""
    add = actions.add_parser("add-kiosk", help=_("register a kiosk and print its credential (shown once)"))
    add.add_argument("kiosk_id", metavar="ID", help=_("the kiosk's id, as in its [kiosk] id"))
    add.add_argument("--name", default="", help=_("what the librarian calls it"))
    add.add_argument("--reissue", action="store_true",
                     help=_("the kiosk exists: issue a new credential and revoke its old ones"))
    _database(add, argparse.SUPPRESS)
    _school_option(add)
    add.set_defaults(handler=_add_kiosk)

    librarian = actions.add_parser("add-librarian", help=_("print a librarian's credential (for the kiosk list and imports)"))
    librarian.add_argument("name")
    _database(librarian, argparse.SUPPRESS)
    _school_option(librarian)
    librarian.set_defaults(handler=_add_librarian)

    sip2 = actions.add_parser("add-sip2-account",
                              help=_("add a SIP2 login for a self-check machine and print its password (shown once)"))
    sip2.add_argument("login", metavar="LOGIN", help=_("the login the machine sends (letters, digits and . _ -)"))
    sip2.add_argument("--reissue", action="store_true",
                      help=_("the account exists: give it a new password (the old one stops working)"))
    _database(sip2, argparse.SUPPRESS)
    _school_option(sip2)
    sip2.set_defaults(handler=_add_sip2_account)

    listing = actions.add_parser("kiosks", help=_("kiosks with their last contact and last event received"))
    listing.add_argument("--json", action="store_true")
    _database(listing, argparse.SUPPRESS)
    _school_option(listing)
    listing.set_defaults(handler=_kiosks)

    review = actions.add_parser("reviews", help=_("events waiting for a librarian's review"))
    review.add_argument("--kiosk", metavar="ID")
    review.add_argument("--json", action="store_true")
    _database(review, argparse.SUPPRESS)
    _school_option(review)
    review.set_defaults(handler=_reviews)

    bridged = actions.add_parser("bridge", help=_("the replay bridge into the school's library system: sent, waiting, "
                                                  "refused, last error (exit 1 when it cannot reach it)"))
    bridged.add_argument("--json", action="store_true")
    _database(bridged, argparse.SUPPRESS)
    _school_option(bridged)
    bridged.set_defaults(handler=_bridge)


def _register_data_actions(actions: argparse._SubParsersAction) -> None:
    """The actions on the data: imports, reference data, the schema, anonymising."""
    importing = actions.add_parser("import", help=_("import USB export files (bookcorner export-batch)"))
    importing.add_argument("files", nargs="+", metavar="FILE")
    importing.add_argument("--json", action="store_true")
    _database(importing, argparse.SUPPRESS)
    _school_option(importing)
    importing.set_defaults(handler=_import)

    load = actions.add_parser("load-reference", help=_("load the school's roster, cards, catalogue and rules"))
    source = load.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help=_("a reference document (JSON, see docs/protocol.md)"))
    source.add_argument("--demo", action="store_true", help=_("the demo school"))
    _database(load, argparse.SUPPRESS)
    _school_option(load)
    load.set_defaults(handler=_load_reference)

    migrate = actions.add_parser("migrate", help=_("bring the database's schema up to date (the server does it too)"))
    _database(migrate, argparse.SUPPRESS)
    migrate.set_defaults(handler=_migrate)

    parted = actions.add_parser("partitions", help=_("PostgreSQL: move the loans and events sitting in a default "
                                                     "partition into their school terms' partitions (after importing "
                                                     "old loans, or what doctor shows)"))
    _database(parted, argparse.SUPPRESS)
    parted.set_defaults(handler=_partitions)

    anonymise = actions.add_parser("anonymise", help=_("anonymise loans returned longer ago than the retention "
                                                       "period (the server does it too, every few hours)"))
    _database(anonymise, argparse.SUPPRESS)
    _school_option(anonymise)
    anonymise.set_defaults(handler=_anonymise)



def _register_school_actions(actions: argparse._SubParsersAction) -> None:
    """The actions on a district's schools."""
    add = actions.add_parser("add-school", help=_("add a school to a district's server (its own roster, catalogue, "
                                                  "kiosks and librarians)"))
    add.add_argument("slug", metavar="SLUG", help=_("its short name: lower-case letters, digits and hyphens, starting "
                                                    "with a letter (it starts the school's credentials)"))
    add.add_argument("--name", default="", help=_("the school's name"))
    _database(add, argparse.SUPPRESS)
    add.set_defaults(handler=_add_school)

    staff = actions.add_parser("add-district-user", help=_("print a credential of the district's own staff: they sign "
                                                           "in to the dashboard and see every school's figures"))
    staff.add_argument("name")
    _database(staff, argparse.SUPPRESS)
    staff.set_defaults(handler=_add_district_user)

    listing = actions.add_parser("schools", help=_("the schools on this server"))
    listing.add_argument("--json", action="store_true")
    _database(listing, argparse.SUPPRESS)
    listing.set_defaults(handler=_list_schools)


def _root_store(args: argparse.Namespace, migrate: bool = True):
    """The database as given (the implicit school's store), migrated, with every school's
    tables too when ``migrate``."""
    try:
        from bookcorner.central import db
        from bookcorner.central.schools import Schools
    except ModuleNotFoundError as missing:
        _fail(_("the central server needs its libraries ({name}): pip install --no-deps -r deploy/requirements-central.txt").format(
            name=missing.name), EXIT_USAGE)
    try:
        store = db.Store(args.db)
        if migrate:
            store.migrate()
            Schools(store).migrate_all()
    except Exception as error:  # noqa: BLE001  (a wrong URL, a missing driver, a refused login, no server)
        _fail(_("cannot open the database {url}: {error}").format(url=db.shown_url(args.db), error=error), EXIT_STORE)
    return store


def _store(args: argparse.Namespace, migrate: bool = True):
    """The store of the school the command acts on (``--school``; the implicit school's without it)."""
    from bookcorner.central.schools import Schools, UnknownSchool

    root = _root_store(args, migrate)
    slug = getattr(args, "school", "")
    if not slug:
        return root
    try:
        return Schools(root).store(slug)
    except UnknownSchool:
        _fail(_("there is no school {slug} on this server: `bookcorner central schools` lists them, "
                "`bookcorner central add-school {slug}` adds it").format(slug=slug), EXIT_USAGE)


def _add_school(args: argparse.Namespace) -> int:
    from bookcorner.central.schools import BadSlug, SchoolExists, Schools

    try:
        school = Schools(_root_store(args)).add(args.slug, args.name)
    except BadSlug:
        _fail(_("{slug}: a school's short name is 1 to 40 lower-case letters, digits and hyphens, starting with a "
                "letter (and not district, public, default, all or admin)").format(slug=args.slug), EXIT_USAGE)
    except SchoolExists:
        _fail(_("school {slug} exists already").format(slug=args.slug), EXIT_REFUSED)
    print(_("school {slug} ({name}) added: give its commands --school {slug}, e.g. `bookcorner central add-librarian "
            "NAME --school {slug}`").format(slug=school.slug, name=school.name))
    return EXIT_OK


def _add_district_user(args: argparse.Namespace) -> int:
    from bookcorner.central.kiosks import Audit, add_district_user

    print(add_district_user(_root_store(args), args.name, audit=Audit(_operator(), "district.add", args.name, {})))
    print(_("This is {name}'s district credential; it is shown only once. It signs in to the dashboard's district "
            "page, which shows every school's figures.").format(name=args.name), file=sys.stderr)
    return EXIT_OK


def _list_schools(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bookcorner.central.schools import Schools
    from bookcorner.central.services.registers import school_name

    schools = Schools(_root_store(args))
    listed = [school if school.slug else replace(school, name=school_name(schools.root)) for school in schools.listed()]
    if args.json:
        print(json.dumps([{"slug": s.slug, "name": s.name, "created_at": s.created_at.isoformat() if s.created_at
                           else None} for s in listed], ensure_ascii=False))
        return EXIT_OK
    for school in listed:
        print(_("{slug}: {name}").format(slug=school.slug or _("(the first school: no --school)"),
                                         name=school.name or "-"))
    return EXIT_OK


def _logging(level: str = "info") -> None:
    from bookcorner.central import logs

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logs.install()  # an exception's text never reaches the log (docs/operations.md)


def _serve(args: argparse.Namespace) -> int:
    if bool(args.certfile) != bool(args.keyfile):
        _fail(_("--certfile and --keyfile go together"), EXIT_USAGE)
    if args.timezone is not None:
        from bookcorner.config.zones import UnknownZone, zone_named

        try:
            zone_named(args.timezone)
        except UnknownZone as error:
            _fail(str(error), EXIT_USAGE)
    settings = _settings(args)
    _logging(args.log_level)
    store = _store(args)
    if args.timezone is not None:
        from bookcorner.central.zone import set_school_zone

        set_school_zone(store, args.timezone, _operator())
    from bookcorner.central.server import serve

    def ready(url: str) -> None:
        print(_("listening on {url}").format(url=url), flush=True)
        if not args.certfile and args.host not in ("127.0.0.1", "localhost", "::1"):
            logging.getLogger("central").warning(
                "serving plain HTTP on %s: kiosk credentials cross the network unencrypted; use --certfile", args.host)

    try:
        serve(store, args.host, args.port, certfile=args.certfile, keyfile=args.keyfile, log_level=args.log_level,
              workers=max(1, args.workers), ready=ready, settings=settings,
              forwarded_allow_ips=args.forwarded_allow_ips, **_sip2_args(args))
    except OSError as error:
        _fail(_("cannot listen on {host}:{port}: {error}").format(host=args.host, port=args.port, error=error.strerror),
              EXIT_USAGE)
    return EXIT_OK


def _sip2_args(args: argparse.Namespace) -> dict:
    """The SIP2 listener's arguments of ``serve`` (none without --sip2-port)."""
    if args.sip2_port is None:
        return {}
    from bookcorner.central.sip2 import Options

    def ready(address: str) -> None:
        print(_("SIP2 listening on {address}").format(address=address), flush=True)
        if not args.certfile and args.host not in ("127.0.0.1", "localhost", "::1"):
            logging.getLogger("central").warning(
                "serving plain SIP2 on %s: passwords and names cross the network unencrypted; use --certfile, or "
                "stunnel (docs/sip2.md)", args.host)

    if args.sip2_idle_timeout <= 0:
        _fail(_("--sip2-idle-timeout must be more than 0 seconds"), EXIT_USAGE)
    return {"sip2_port": args.sip2_port, "sip2_ready": ready,
            "sip2_options": Options(encoding=args.sip2_encoding, idle_timeout_s=args.sip2_idle_timeout,
                                    certfile=args.certfile, keyfile=args.keyfile,
                                    language=args.sip2_language or "")}


def _settings(args: argparse.Namespace):
    """The server's settings: the storm's limits as given, the rest as ``Settings`` says."""
    from bookcorner.central.config import Settings

    given = {"push_limit": args.push_limit, "push_queue": args.push_queue, "push_wait_s": args.push_wait,
             "busy_retry_after_s": args.busy_retry_after, "busy_retry_after_max_s": args.busy_retry_after_max,
             "report_database": args.report_database, "district_every_s": args.district_every}
    settings = Settings(**{name: value for name, value in given.items() if value is not None})
    if settings.district_every_s <= 0:
        _fail(_("--district-every must be more than 0 seconds"), EXIT_USAGE)
    if settings.push_limit < 1 or settings.push_queue < 0 or settings.push_wait_s < 0 \
            or not 1 <= settings.busy_retry_after_s <= settings.busy_retry_after_max_s:
        _fail(_("--push-limit and --busy-retry-after must be at least 1, --push-queue and --push-wait at least 0, "
                "and --busy-retry-after-max at least --busy-retry-after"), EXIT_USAGE)
    return settings


def _operator() -> str:
    """Who ran a command, for the audit log (the dashboard names the signed-in librarian)."""
    import getpass

    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def _add_kiosk(args: argparse.Namespace) -> int:
    from bookcorner.central.kiosks import Audit, KioskExists, add_kiosk

    store = _store(args)
    audit = Audit(_operator(), "kiosk.reissue" if args.reissue else "kiosk.add", args.kiosk_id,
                  {"name": args.name or args.kiosk_id})
    try:
        token = add_kiosk(store, args.kiosk_id, args.name, reissue=args.reissue, audit=audit)
    except KioskExists:
        _fail(_("kiosk {id} exists already; --reissue gives it a new credential and revokes the old one").format(
            id=args.kiosk_id), EXIT_REFUSED)
    print(token)
    print(_("This is kiosk {id}'s credential; it is shown only once. On the kiosk, save it as the file named by "
            "[sync] credential_file (default <data_dir>/sync/credential), readable by the sync daemon only "
            "(chmod 600).").format(id=args.kiosk_id), file=sys.stderr)
    return EXIT_OK


def _add_librarian(args: argparse.Namespace) -> int:
    from bookcorner.central.kiosks import Audit, add_librarian

    print(add_librarian(_store(args), args.name, audit=Audit(_operator(), "librarian.add", args.name, {})))
    print(_("This is {name}'s librarian credential; it is shown only once.").format(name=args.name), file=sys.stderr)
    return EXIT_OK


def _add_sip2_account(args: argparse.Namespace) -> int:
    from bookcorner.central.kiosks import Audit
    from bookcorner.central.services.sip2_accounts import AccountExists, BadLogin, add_account, kiosk_of, login_of

    store = _store(args)
    login = login_of(store, args.login)  # (a district's school: its slug in front)
    audit = Audit(_operator(), "sip2.reissue" if args.reissue else "sip2.add", args.login, {})
    try:
        password = add_account(store, args.login, reissue=args.reissue, audit=audit)
    except BadLogin:
        _fail(_("{login}: a SIP2 login is 1 to 59 letters, digits and . _ - (starting with a letter or digit)").format(
            login=args.login), EXIT_USAGE)
    except AccountExists:
        _fail(_("SIP2 account {login} exists already; --reissue gives it a new password and revokes the old "
                "one").format(login=args.login), EXIT_REFUSED)
    print(password)
    print(_("This is the password of SIP2 account {login}; it is shown only once. Enter the login and this password "
            "in the self-check machine's SIP2 settings. Its loans appear as kiosk {kiosk}.").format(
        login=login, kiosk=kiosk_of(login)), file=sys.stderr)
    return EXIT_OK


def _kiosks(args: argparse.Namespace) -> int:
    import msgspec

    from bookcorner.central.kiosks import list_kiosks

    listing = list_kiosks(_store(args))
    if args.json:
        print(msgspec.json.encode(listing).decode())
        return EXIT_OK
    if not listing.kiosks:
        print(_("no kiosks yet: add one with `bookcorner central add-kiosk ID`"))
    for k in listing.kiosks:
        print(_("{id} ({name}): events up to {seq}, last contact {contact}, {review} waiting for review").format(
            id=k.kiosk_id, name=k.name, seq=k.applied_seq, contact=k.last_contact or _("never"),
            review=k.needs_review))
    return EXIT_OK


def _reviews(args: argparse.Namespace) -> int:
    from bookcorner.central.kiosks import open_reviews

    found = open_reviews(_store(args), args.kiosk)
    if args.json:
        print(json.dumps(found, default=str, ensure_ascii=False))
        return EXIT_OK
    if not found:
        print(_("nothing waits for review"))
    for review in found:
        print(_("{kiosk} #{seq}: {reason} {detail}").format(
            kiosk=review["kiosk_id"], seq=review["seq"], reason=review["reason"],
            detail=json.dumps(review["detail"], ensure_ascii=False)))
    return EXIT_OK


def _bridge(args: argparse.Namespace) -> int:
    import msgspec

    from bookcorner.central.services import bridge

    store = _store(args)
    chosen, counts, seen = bridge.settings(store), bridge.counts(store), bridge.state(store)
    failing = chosen.enabled and seen.failures > 0
    if args.json:
        print(json.dumps({"enabled": chosen.enabled, "host": chosen.host, "port": chosen.port, **counts,
                          **msgspec.to_builtins(seen)}, default=str, ensure_ascii=False))
        return EXIT_REFUSED if failing else EXIT_OK
    print(_("replay bridge {state} ({host}:{port}): {sent} sent, {waiting} waiting, {refused} refused").format(
        state=_("on") if chosen.enabled else _("off"), host=chosen.host or "-", port=chosen.port, sent=counts["sent"],
        waiting=counts["waiting"] + counts["sending"], refused=counts["refused"]))
    if seen.last_error:
        print(_("last error ({at}): {error}").format(at=seen.last_error_at, error=seen.last_error))
    if failing:
        print(_("it cannot reach the library system ({n} tries in a row); next try {at}").format(
            n=seen.failures, at=seen.next_try))
    return EXIT_REFUSED if failing else EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from bookcorner.central.db import Busy
    from bookcorner.central.imports import import_export
    from bookcorner.central.ingest import IngestError
    from bookcorner.protocol.export import ExportInvalid

    store = _store(args)
    status, results = EXIT_OK, []
    for name in args.files:
        try:
            data = Path(name).read_bytes()
            answer = import_export(store, data)
        except OSError as error:
            print(_("{file}: cannot read it: {error}").format(file=name, error=error.strerror), file=sys.stderr)
            status = EXIT_REFUSED
            continue
        except (ExportInvalid, IngestError, Busy) as error:
            print(_("{file}: not imported: {error}").format(file=name, error=error), file=sys.stderr)
            status = EXIT_REFUSED
            continue
        counts = {kind: sum(getattr(c, kind) for c in answer.chunks)
                  for kind in ("applied", "applied_with_warning", "duplicate", "needs_review")}
        results.append({"file": name, "kiosk_id": answer.kiosk_id, "applied_seq": answer.applied_seq, **counts})
        if not args.json:
            print(_("{file}: kiosk {kiosk}: {applied} applied, {warned} with a warning, {duplicate} already here, "
                    "{review} for review; the server has its events up to {seq}").format(
                file=name, kiosk=answer.kiosk_id, applied=counts["applied"], warned=counts["applied_with_warning"],
                duplicate=counts["duplicate"], review=counts["needs_review"], seq=answer.applied_seq))
    if args.json:
        print(json.dumps(results))
    return status


def _load_reference(args: argparse.Namespace) -> int:
    import msgspec

    from bookcorner.central.reference import document_from_reference, load_document
    from bookcorner.protocol.messages import ReferenceDocument

    store = _store(args)
    if args.demo:
        from datetime import datetime

        from bookcorner.central.zone import school_zone
        from bookcorner.demo.school import build_demo_school

        school = build_demo_school(datetime.now(school_zone(store)).date())  # the school's today
        document = document_from_reference(school.reference(), school.name)
    else:
        try:
            document = msgspec.json.decode(Path(args.file).read_bytes(), type=ReferenceDocument)
        except OSError as error:
            _fail(_("{file}: cannot read it: {error}").format(file=args.file, error=error.strerror), EXIT_USAGE)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            _fail(_("{file}: not a reference document: {error}").format(file=args.file, error=error), EXIT_USAGE)
    counts = load_document(store, document)
    print(_("loaded: {patrons} patrons, {cards} cards, {items} items changed; {removed} removed").format(
        patrons=counts["patrons"], cards=counts["cards"], items=counts["items"],
        removed=counts["patrons_removed"] + counts["cards_removed"] + counts["items_removed"]))
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    _root_store(args)
    print(_("the database is up to date"))
    return EXIT_OK


def _partitions(args: argparse.Namespace) -> int:
    from bookcorner.central.db import now
    from bookcorner.central.partitions import adopt_default_rows

    store = _store(args)
    if store.sqlite:
        print(_("SQLite is not partitioned: nothing to do"))
        return EXIT_OK
    with store.writing() as conn:
        moved = adopt_default_rows(conn, now())
    if not any(moved.values()):
        print(_("every loan and event is in its school term's partition: nothing to move"))
        return EXIT_OK
    print(_("moved into their school terms' partitions: {loans} loan(s), {events} event(s)").format(
        loans=moved.get("loans", 0), events=moved.get("events", 0)))
    return EXIT_OK


def _anonymise(args: argparse.Namespace) -> int:
    from bookcorner.central.db import now
    from bookcorner.central.privacy import anonymise, anonymise_events, events_retention_days, retention_days

    store = _store(args)
    with store.reading() as conn:
        days, log_days = retention_days(conn), events_retention_days(conn)
    if days == 0:
        print(_("the retention period is 0: loans keep their borrower's name"))
        return EXIT_OK
    changed = anonymise(store, now(), "bookcorner central anonymise")
    print(_("{count} returned loans anonymised (retention period {days} days)").format(count=changed, days=days))
    if log_days:
        changed = anonymise_events(store, now(), "bookcorner central anonymise")
        print(_("{count} events of the circulation log anonymised (period {days} days)").format(
            count=changed, days=log_days))
    return EXIT_OK
