"""Catalogue servers for the cataloguing tests: YAZ's ``yaz-ztest`` (Index Data's Z39.50 and
SRU test server from Debian's ``yaz``, which serves its own built-in MARC 21 records), and
three that fail as real ones do: a closed port, one that takes the connection and never
answers, one that answers junk."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class YazZtest:
    """``yaz-ztest`` listening on a port of loopback (threaded: no forked children left behind)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> YazZtest:
        program = shutil.which("yaz-ztest")
        assert program is not None
        self.process = subprocess.Popen([program, "-T", "-l", str(self.log), f"tcp:127.0.0.1:{self.port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"yaz-ztest did not listen: {self.log.read_text(errors='replace')[-500:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Misbehaving:
    """A socket server on loopback that takes connections and then either says nothing
    (``junk=None``: a server that hangs) or writes ``junk`` and hangs up."""

    def __init__(self, junk: bytes | None) -> None:
        self.junk = junk
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> Misbehaving:
        self.thread.start()
        return self

    def _serve(self) -> None:
        while not self.stopping:
            try:
                conn, _address = self.listener.accept()
            except OSError:
                return
            if self.junk is None:
                self.held.append(conn)
                continue
            try:
                conn.recv(4096)
                conn.sendall(self.junk)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self.stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting in the thread
        except OSError:
            pass
        self.listener.close()
        for conn in self.held:
            conn.close()
        self.thread.join(timeout=5)
