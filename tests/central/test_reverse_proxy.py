"""Several server processes behind one address: two ``bookcorner central`` processes on
their own ports on one PostgreSQL database, a real nginx in front of them (HTTPS, with
``deploy/nginx-district.conf`` filled in: the reference configuration is the one tested),
and real sync daemons pushing through nginx while one process and then the other is
SIGKILLed and started again.

Shown: every event is stored exactly once and the daemons carry on by themselves; a
dashboard session made through one process is valid on the other (the processes keep no
state); the server sees the client's own address and scheme behind the proxy
(X-Forwarded-For, X-Forwarded-Proto); 429 with Retry-After passes through nginx; a body
larger than the server takes is refused by nginx already. Skipped, with the reason, where
nginx or PostgreSQL is absent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.central.services.sessions import SESSION_COOKIE, SIGNED_IN
from bookcorner.protocol.messages import MAX_BODY_BYTES
from bookcorner.sync.status import read_status
from tests.central.dashboard_client import Librarian
from tests.central.harness import CentralServer, hold_a_turn, let_go, postgres_database, postgres_problem
from tests.central.standby import free_port
from tests.sync.kiosk import LendingKiosks, TestKiosk, recorded

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "nginx-district.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
KIOSKS, PUSH_LIMIT = 4, 2
#: the client's own address, as the proxy sees it (all of 127.0.0.0/8 is this machine)
CLIENT_ADDRESS = "127.0.0.2"


def nginx_config(servers: list[int], listen: int, cert: Path) -> str:
    """``deploy/nginx-district.conf`` with its @NAMES@ filled in, as an operator does."""
    lines = "\n    ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in servers)
    filled = []
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#"):  # (the comments name the @NAMES@ too)
            for name, value in (("@SERVERS@", lines), ("@LISTEN@", f"127.0.0.1:{listen}"), ("@NAME@", "localhost"),
                                ("@CERT@", str(cert)), ("@KEY@", str(cert))):
                line = line.replace(name, value)
            assert "@" not in line, line
        filled.append(line)
    return "\n".join(filled) + "\n"


@dataclass
class Nginx:
    process: subprocess.Popen
    url: str
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # (graceful: its workers finish and go)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(folder: Path, servers: list[int], cert: Path) -> Nginx:
    folder.mkdir()
    port = free_port()
    (folder / "district.conf").write_text(nginx_config(servers, port, cert), encoding="utf-8")
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # (its workers read the test's folders)
        + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
        f"events {{ worker_connections 512; }}\nhttp {{\n    log_format upstream '$upstream_addr $status';\n"
        f"    access_log {folder / 'access.log'} upstream;\n{temp}\n"
        f"    include {folder / 'district.conf'};\n}}\n", encoding="utf-8")
    test = subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")], capture_output=True,
                          text=True, timeout=30, check=False)
    assert test.returncode == 0, test.stderr
    process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return Nginx(process, f"https://localhost:{port}", folder)
        except OSError:
            assert process.poll() is None, (folder / "error.log").read_text()
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"nginx did not listen: {(folder / 'error.log').read_text()}")


class Backends:
    """The server processes, each on a port of its own (kept when it is started again)."""

    def __init__(self, db_url: str, folder: Path, count: int) -> None:
        self.db_url, self.folder = db_url, folder
        self.ports = [free_port() for _ in range(count)]
        self.servers: list[CentralServer | None] = [None] * count
        self.starts = 0

    def start(self, index: int) -> CentralServer:
        self.starts += 1
        server = CentralServer(self.db_url, self.folder / f"server-{index}-{self.starts}.log",
                               "--port", str(self.ports[index]), "--push-limit", str(PUSH_LIMIT), "--push-queue", "0",
                               "--busy-retry-after", "1", "--busy-retry-after-max", "3").start()
        self.servers[index] = server
        return server

    def kill(self, index: int) -> None:
        server = self.servers[index]
        assert server is not None and server.process is not None
        server.process.kill()  # SIGKILL, mid-push: no goodbye
        server.process.wait()
        server.stop()

    def stop(self) -> None:
        for server in self.servers:
            if server is not None:
                server.stop()


@pytest.fixture
def district(tmp_path: Path) -> Iterator[tuple[Nginx, Backends, Path]]:
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx; scripts/test installs it as root)")
    problem = postgres_problem()
    if problem:
        pytest.skip(f"several server processes on one database need PostgreSQL: {problem}")
    authority = trustme.CA()
    cert, ca = tmp_path / "server.pem", tmp_path / "ca.pem"
    authority.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
    authority.cert_pem.write_to_path(str(ca))
    with postgres_database() as url:
        backends = Backends(url, tmp_path, 2)
        try:
            for index in range(2):
                backends.start(index)  # (the first migrates the database)
            nginx = start_nginx(tmp_path / "nginx", backends.ports, cert)
            try:
                yield nginx, backends, ca
            finally:
                nginx.stop()
        finally:
            backends.stop()


class FromAddress(HTTPAdapter):
    """Connections from one address of this machine (a client elsewhere on the network)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **{**kwargs, "source_address": (self.address, 0)})


def stored(backends: Backends, kiosk_id: str) -> list[int]:
    server = backends.servers[0]
    assert server is not None
    with server.store.reading() as conn:
        return list(conn.execute(select(db.events.c.seq).where(db.events.c.kiosk_id == kiosk_id)
                                 .order_by(db.events.c.seq)).scalars())


def test_daemons_push_through_nginx_while_each_server_process_is_killed_and_started_again(district, tmp_path):
    nginx, backends, ca = district
    first = backends.servers[0]
    assert first is not None
    kiosks = []
    for n in range(KIOSKS):
        kiosk_id = f"px-{n}"
        kiosks.append(TestKiosk(tmp_path / kiosk_id, kiosk_id, nginx.url, first.add_kiosk(kiosk_id)))
    lending = LendingKiosks(kiosks, batch_size=20, push_after_s=0.05, retry_initial_s=0.05, retry_max_s=0.3,
                            busy_retry_max_s=1.0, read_timeout_s=10.0, ca_bundle=str(ca))
    kills, restarts = [], []
    with lending.running():
        lending.acknowledged_since(0)
        for index in (0, 1):  # each process in turn: SIGKILLed mid-push, down a while, started again
            kills.append(time.time())
            backends.kill(index)
            lending.acknowledged_since(kills[-1] + 0.5)  # (the other process takes them all)
            backends.start(index)
            restarts.append(time.time())
            lending.acknowledged_since(restarts[-1])
        lending.drain()
    acks = lending.acks
    total = 0
    for kiosk in kiosks:
        seqs, last = stored(backends, kiosk.kiosk_id), recorded(kiosk)
        mine = lending.times(kiosk.kiosk_id)
        assert read_status(kiosk.root).acked_seq == last, kiosk.kiosk_id
        assert seqs == list(range(1, last + 1)), f"{kiosk.kiosk_id}: events missing or twice on the server"
        assert max(up_to for up_to, _ in mine) == last
        whens = [when for _, when in mine]  # acknowledged before, while one process was down, and after
        shown = (kiosk.kiosk_id, [round(w - kills[0], 2) for w in whens], [round(t - kills[0], 2) for t in
                                                                          (*kills, *restarts)])
        assert any(w < kills[0] for w in whens) and any(w > restarts[-1] for w in whens), shown
        assert any(kills[0] < w < restarts[0] for w in whens) and any(kills[1] < w < restarts[1] for w in whens), shown
        total += last
    assert not acks.rewinds, acks.rewinds
    answered = [line.split() for line in (nginx.folder / "access.log").read_text().splitlines()]
    by_process = {f"127.0.0.1:{port}": sum(a[0] == f"127.0.0.1:{port}" and a[-1] == "200" for a in answered)
                  for port in backends.ports}
    assert all(by_process.values()), by_process  # both processes took pushes
    print(f"\nthrough nginx: {KIOSKS} kiosks, {total} events, each on the server once; "
          f"{len(acks.seen)} batches acknowledged, {len(acks.failures)} failed rounds while a process was down; "
          f"answered 200 by each process: {by_process}; nginx's answers: "
          f"{ {code: sum(a[-1] == code for a in answered) for code in sorted({a[-1] for a in answered})} }")


def test_a_session_made_on_one_process_is_valid_on_the_other_and_the_client_is_seen_behind_the_proxy(district):
    nginx, backends, ca = district
    first, second = backends.servers
    assert first is not None and second is not None
    librarian = Librarian(nginx.url)
    librarian.http.verify, librarian.http.trust_env = str(ca), False  # (no $REQUESTS_CA_BUNDLE in the way)
    librarian.http.mount("https://", FromAddress(CLIENT_ADDRESS))
    signed_in = librarian.sign_in("Ms Li", first.add_librarian("Ms Li"))
    assert signed_in.status_code == 303, signed_in.text
    assert "secure" in signed_in.headers["set-cookie"].lower()  # the client's scheme is https (X-Forwarded-Proto)
    session = librarian.http.cookies.get(SESSION_COOKIE)
    assert session
    for server in (first, second):  # each process directly: the session is in the database, not in a process
        page = requests.get(f"{server.url}/dashboard/end-of-day", cookies={SESSION_COOKIE: session},
                            allow_redirects=False, timeout=15)
        assert page.status_code == 200, (server.url, page.status_code)
    for _ in range(4):  # and through nginx, which deals requests out to both
        assert librarian.get("/end-of-day").status_code == 200
    with first.store.reading() as conn:  # the sign-in was recorded with the client's own address
        details = [json.loads(d) for d in conn.execute(select(db.audit_log.c.detail).where(
            db.audit_log.c.who == "Ms Li", db.audit_log.c.action == SIGNED_IN)).scalars()]
    assert details and details[-1]["address"] == CLIENT_ADDRESS, details


def test_429_and_retry_after_pass_through_nginx_and_a_body_too_large_stops_there(district):
    nginx, backends, ca = district
    token = backends.servers[0].add_kiosk("px-held")
    held = [hold_a_turn(server.url, token) for server in backends.servers for _ in range(PUSH_LIMIT)]
    try:
        time.sleep(0.3)  # (both processes have taken the slow pushes' headers: every turn is held)
        answers = [requests.post(f"{nginx.url}/v1/push", data=b"{}", verify=str(ca), timeout=10,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                   for _ in range(2)]
    finally:
        for conn in held:
            let_go(conn)
    for answer in answers:
        assert answer.status_code == 429 and answer.json()["error"] == "busy", answer.text
        assert 1 <= int(answer.headers["Retry-After"]) <= 3
    big = requests.post(f"{nginx.url}/v1/push", verify=str(ca), timeout=10,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                 "Content-Length": str(MAX_BODY_BYTES + 1)}, data=b"")
    assert big.status_code == 413 and "nginx" in big.text  # refused by the proxy, before the body is read
