"""Running the API: uvicorn on a socket bound here, so that ``--port 0`` works and the
address actually listened on is printed before the first request can arrive.

With ``workers`` > 1 the socket is shared by that many pre-forked processes: requests are
read, decoded and answered in parallel; on PostgreSQL different kiosks' batches are also
taken in parallel (each locks only its kiosk and the books it changes: ``central.db``),
on SQLite writes go one at a time. This is how a busy district server uses more than one
core of a Python process; the processes keep no state of their own, so several hosts
behind one address work the same way.

With a SIP2 port, its socket is bound here too and served by one process only (the first
worker): the SIP2 accounts' event numbers are handed out by that one process
(``central.services.sip2``).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from bookcorner.central import db
from bookcorner.central.config import Settings

if TYPE_CHECKING:
    from bookcorner.central.sip2 import Listener, Options

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # that say they are TCP; without it every reply waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _run(url: str, sock: socket.socket, config_args: dict, settings: Settings | None = None,
         sip2: Listener | None = None) -> bool:
    import uvicorn

    from bookcorner.central import logs
    from bookcorner.central.app import create_app

    logs.install()  # this process serves: no exception's text reaches its log (uvicorn's included)
    store = db.Store(url)
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings, sip2=sip2), **config_args))
    settle_garbage_collector()
    try:
        server.run(sockets=[sock])
    finally:
        store.dispose()
    return server.started


#: young objects allocated before the garbage collector looks (Python's default: 700); a
#: batch of 500 events makes tens of thousands, nearly all alive until its reply is sent
GC_YOUNG_THRESHOLD = 5000


def settle_garbage_collector() -> None:
    """Once the app is built: what start-up made (modules, routes, schemas, tables: ~100,000
    objects, alive as long as the process) is moved out of the collector's sight
    (``gc.freeze``), and young objects are collected less often. Python's cyclic collector
    otherwise walks all of start-up's objects again and again while a push decodes and
    replays its events: a fifth of a push's CPU (75 -> 59 us per event, the push route
    called in process; 66-73 -> 55-61 served, one kiosk). Reference counting frees what it
    always did; cycles made later are still collected."""
    gc.collect()
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def serve(
    store: db.Store,
    host: str = "127.0.0.1",
    port: int = 8443,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    log_level: str = "info",
    workers: int = 1,
    ready: Callable[[str], None] | None = None,
    settings: Settings | None = None,
    sip2_port: int | None = None,
    sip2_options: Options | None = None,
    sip2_ready: Callable[[str], None] | None = None,
    forwarded_allow_ips: str | None = None,
) -> None:
    store.migrate()
    url = store.url
    store.dispose()  # every process opens its own connections
    sock = bind(host, port)
    sip2 = _sip2_listener(host, sip2_port, sip2_options)
    bound = sock.getsockname()[1]
    scheme = "https" if certfile else "http"
    shown = f"[{host}]" if ":" in host else host
    address = f"{scheme}://{shown}:{bound}"
    config_args = dict(log_level=log_level, access_log=log_level == "debug", ssl_certfile=certfile,
                       ssl_keyfile=keyfile, timeout_keep_alive=30, server_header=False,
                       # behind a reverse proxy: the client's address and scheme from its
                       # X-Forwarded-For / -Proto, believed only from these addresses (None:
                       # uvicorn's default, $FORWARDED_ALLOW_IPS or 127.0.0.1)
                       proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips)

    sip2_address = f"{shown}:{sip2.sock.getsockname()[1]}" if sip2 is not None else None

    def announce() -> None:
        (ready or print)(address)
        if sip2_address is not None:
            (sip2_ready or print)(sip2_address)
        sys.stdout.flush()

    if workers <= 1:
        announce()
        started = _run(url, sock, config_args, settings, sip2)
        sock.close()
        if not started:
            sys.exit(1)
        return
    children = _fork_workers(workers, url, sock, config_args, settings, sip2)
    sock.close()
    if sip2 is not None:
        sip2.sock.close()
    if not _wait_for(children, announce):
        sys.exit(1)


def _sip2_listener(host: str, port: int | None, options: Options | None) -> Listener | None:
    if port is None:
        return None
    from bookcorner.central.sip2 import Listener, Options

    return Listener(bind(host, port), options or Options())


def _fork_workers(workers: int, url: str, sock: socket.socket, config_args: dict, settings: Settings | None = None,
                  sip2: Listener | None = None) -> list[int]:
    """``workers`` processes serving on ``sock`` (the first one SIP2 too); their ids."""
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: serve until told to stop
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent passes ^C on as SIGTERM
            code = 0
            try:
                code = 0 if _run(url, sock, config_args, settings, sip2 if index == 0 else None) else 1
            except BaseException:
                log.exception("server worker failed")
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    return children


def _wait_for(children: list[int], announce: Callable[[], None]) -> bool:
    """Pass SIGTERM and ^C on to the workers, announce the address, and wait for them all;
    False when one failed (the others are then stopped)."""

    def stop(_signum, _frame) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    announce()
    sys.stdout.flush()
    failed = False
    for child in children:
        _pid, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
            failed = True
            stop(None, None)
    return not failed
