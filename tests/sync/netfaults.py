"""Real network weather for the daemon: servers on real sockets that misbehave in one
way each, and a fault-injecting TCP proxy in front of the real central server."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def read_request(conn: socket.socket, timeout: float = 5.0) -> bytes:
    """One HTTP request, headers and body (by Content-Length)."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def reset(conn: socket.socket) -> None:
    """Close with a TCP reset (RST), as a crashing peer or a middlebox does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class ScriptedServer:
    """Accepts connections and hands each to ``handle`` in its own thread."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.handle = handle
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._held.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        for conn in self._held:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer(status: str, body: bytes, *headers: str, declared_length: int | None = None) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        read_request(conn)
        length = len(body) if declared_length is None else declared_length
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
        head += "".join(h + "\r\n" for h in headers) + "Connection: close\r\n\r\n"
        conn.sendall(head.encode() + body)
        conn.close()
    return handle


def never_answer(conn: socket.socket) -> None:
    read_request(conn)
    time.sleep(30)  # held open, silent, until the test closes it


def reset_after_request(conn: socket.socket) -> None:
    read_request(conn)
    reset(conn)


class FaultyProxy:
    """A TCP proxy in front of a real server that spoils a share of the exchanges
    (one HTTP exchange per connection: the client is told ``Connection: close``-free
    keep-alive is not used because the proxy closes after each reply).

    Faults: ``drop`` (the request is read, then the connection closes without a reply),
    ``reset`` (RST after the request reached the server, so it may well be stored),
    ``truncate`` (the server's reply cut in half), ``delay`` (a slow reply), ``hang``
    (the reply never comes: the client's read timeout)."""

    FAULTS = ("drop", "reset", "truncate", "delay", "hang")

    def __init__(self, upstream_port: int, fault_rate: float = 1 / 3, seed: int = 5, delay_s: float = 0.3) -> None:
        self.upstream_port = upstream_port
        self.fault_rate = fault_rate
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.server = ScriptedServer(self._exchange)
        self.url = self.server.url
        self._lock = threading.Lock()
        self._spoilt = 0

    def _choose(self) -> str:
        """Whether an exchange is spoilt is drawn at random; which fault it gets takes
        the kinds in turn, so that every kind happens once five exchanges are spoilt,
        however few exchanges a loaded machine lets through."""
        with self._lock:
            if self.rng.random() < self.fault_rate:
                fault = self.FAULTS[self._spoilt % len(self.FAULTS)]
                self._spoilt += 1
            else:
                fault = "pass"
            self.counts[fault] += 1
            return fault

    def _exchange(self, client: socket.socket) -> None:
        while True:  # one exchange per request, on the client's kept-alive connection
            request = read_request(client, timeout=30)
            if not request:
                client.close()
                return
            fault = self._choose()
            if fault == "drop":
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            try:
                upstream.sendall(request)
                reply = read_reply(upstream)
            finally:
                upstream.close()
            if fault == "reset":
                reset(client)
                return
            if fault == "truncate":
                client.sendall(reply[: len(reply) // 2])
                client.close()
                return
            if fault == "hang":
                time.sleep(30)
                client.close()
                return
            if fault == "delay":
                time.sleep(self.delay_s)
            client.sendall(reply)

    @property
    def exchanges(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        self.server.close()


def read_reply(conn: socket.socket) -> bytes:
    """One whole HTTP reply (headers and a Content-Length body)."""
    return read_request(conn, timeout=30)
