"""Running the API: uvicorn on a socket bound here, so that ``--port 0`` works and the
address actually listened on is printed before the first request can arrive."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

from central import db

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(
    store: db.Store,
    host: str = "127.0.0.1",
    port: int = 8443,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    log_level: str = "info",
    ready: Callable[[str], None] | None = None,
) -> None:
    import uvicorn

    from central.app import create_app

    store.migrate()
    app = create_app(store)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    scheme = "https" if certfile else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{bound}"
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level == "debug", ssl_certfile=certfile,
                            ssl_keyfile=keyfile, timeout_keep_alive=30, server_header=False)
    server = uvicorn.Server(config)
    if ready is not None:
        ready(url)
    else:
        print(url, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.dispose()
    if not server.started:
        sys.exit(1)
