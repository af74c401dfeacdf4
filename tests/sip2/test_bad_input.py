"""What a SIP2 server meets on a school network: garbage, wrong checksums, oversized fields,
a machine that connects and says nothing, 200 connections at once, wrong and revoked
passwords. Each connection gets a SIP2 answer or a clean close, and HTTP goes on serving."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.protocol import sip2
from tests.sip2.conftest import CARD, LOGIN


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _ask(sock: socket.socket, frame: bytes) -> bytes:
    sock.sendall(frame)
    answer = b""
    while not answer.endswith(b"\r"):
        chunk = sock.recv(4096)
        if not chunk:
            return answer  # closed
        answer += chunk
    return answer


def _login_frame(password: str, sequence: int = 0) -> bytes:
    return sip2.encode(sip2.Message("93", "00", (("CN", LOGIN), ("CO", password), ("CP", "corner")), sequence))


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return False  # a reset is not a clean close


@pytest.fixture
def logged_in(utf8_server):
    sock = _connect(utf8_server)
    assert sip2.decode(_ask(sock, _login_frame(utf8_server.password))).fixed == "1"
    yield sock
    sock.close()


def test_a_wrong_checksum_is_asked_again_and_the_right_one_answered(utf8_server, logged_in):
    good = sip2.encode(sip2.Message("23", "000" + "20261204    101010", (("AO", "x"), ("AA", CARD), ("AC", ""),
                                                                         ("AD", "")), 4))
    broken = good[:-5] + (b"0000" if good[-5:-1] != b"0000" else b"1111") + b"\r"
    assert sip2.decode(_ask(logged_in, broken)).command == "96"
    answer = sip2.decode(_ask(logged_in, good))
    assert (answer.command, answer.sequence, answer.get("BL")) == ("24", 4, "Y")


def test_a_resend_request_gets_the_last_answer_again(utf8_server, logged_in):
    request = sip2.encode(sip2.Message("17", "20261204    101010", (("AO", "x"), ("AB", "nope")), 7))
    first = _ask(logged_in, request)
    assert _ask(logged_in, sip2.encode(sip2.Message("97"))) == first


@pytest.mark.parametrize("frame", [
    b"hello\r",
    b"23garbage\r",
    b"2300020261204    101010AO" + b"x" * 300 + b"|AAc|ACx|ADx|\r",  # a field past the standard's 255
    b"6500020261204    101010AOx|\r",  # a command this server does not take
])
def test_bad_frames_are_asked_again_then_the_session_is_closed(utf8_server, logged_in, frame):
    for _ in range(sip2_server_bad_frames() - 1):
        assert sip2.decode(_ask(logged_in, frame)).command == "96"
    assert _ask(logged_in, frame) == b""  # the third in a row: closed, cleanly
    assert _closed(logged_in)


def sip2_server_bad_frames() -> int:
    from bookcorner.central.sip2 import MAX_BAD_FRAMES

    return MAX_BAD_FRAMES


def test_a_frame_longer_than_the_limit_closes_the_session(utf8_server):
    sock = _connect(utf8_server)
    sock.sendall(b"23" + b"x" * (sip2.MAX_FRAME + 100))
    assert _closed(sock)
    sock.close()


def test_nothing_but_login_and_status_before_login(utf8_server):
    sock = _connect(utf8_server)
    status = sip2.decode(_ask(sock, sip2.encode(sip2.Message("99", "0" + "030" + "2.00", (), 1))))
    assert status.command == "98" and status.fixed[0] == "N"  # not online for this session yet
    checkout = sip2.Message("11", "NN" + "20261204    101010" + " " * 18,
                            (("AO", "x"), ("AA", CARD), ("AB", "b"), ("AC", "")), 2)
    assert _ask(sock, sip2.encode(checkout)) == b"" and _closed(sock)
    sock.close()


def test_a_wrong_password_is_refused_and_the_third_closes_the_session(utf8_server):
    sock = _connect(utf8_server)
    for attempt in range(3):
        answer = _ask(sock, _login_frame("wrong", attempt))
        assert sip2.decode(answer).fixed == "0"
    assert _closed(sock)
    sock.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout(utf8_server):
    sock = _connect(utf8_server)
    began = time.monotonic()
    assert _closed(sock)
    assert 1.0 < time.monotonic() - began < 8
    sock.close()


def test_two_hundred_connections_at_once_while_http_keeps_serving(utf8_server):
    login = _login_frame(utf8_server.password)
    status = sip2.encode(sip2.Message("23", "000" + "20261204    101010",
                                      (("AO", "x"), ("AA", CARD), ("AC", ""), ("AD", "")), 1))

    async def one() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", utf8_server.port)
        try:
            outcome = ""
            for frame in (login, status):
                writer.write(frame)
                await writer.drain()
                answer = await asyncio.wait_for(reader.readuntil(b"\r"), 60)
                outcome = sip2.decode(answer).command
            return outcome
        except asyncio.IncompleteReadError as end:
            return "closed" if not end.partial else "partial"
        finally:
            writer.close()

    async def many() -> list[str]:
        return await asyncio.gather(*(one() for _ in range(200)))

    health = []
    began = time.monotonic()
    loop_answers: list[str] = []

    def http_meanwhile() -> None:
        while time.monotonic() - began < 3:
            health.append(requests.get(f"{utf8_server.central.url}/v1/health", timeout=10).status_code)

    import threading

    thread = threading.Thread(target=http_meanwhile)
    thread.start()
    loop_answers = asyncio.run(many())
    thread.join()
    assert set(loop_answers) <= {"24", "closed"} and loop_answers.count("24") >= 190, loop_answers
    assert health and set(health) == {200}
    # and the server still serves SIP2 afterwards
    sock = _connect(utf8_server)
    assert sip2.decode(_ask(sock, login)).fixed == "1"
    sock.close()


def test_a_revoked_account_can_no_longer_log_in(tmp_path_factory):
    from tests.sip2.conftest import start

    server = start(tmp_path_factory.mktemp("sip2-revoke"), "utf-8")
    try:
        from bookcorner.central.services.school import kiosk_rows, revoke_kiosk

        store = server.central.store
        row = next(r for r in kiosk_rows(store) if r.kiosk_id == f"sip2-{LOGIN}")
        assert row.active_credentials == 1  # the kiosks page offers to revoke it
        session = _connect(server)  # a machine logged in before the revocation
        assert sip2.decode(_ask(session, _login_frame(server.password))).fixed == "1"
        assert revoke_kiosk(store, "Ms Li", f"sip2-{LOGIN}") == 1
        item = sip2.encode(sip2.Message("17", "20261204    101010", (("AO", "x"), ("AB", "b")), 1))
        assert _ask(session, item) == b"" and _closed(session)  # stops at its next request
        session.close()
        sock = _connect(server)
        assert sip2.decode(_ask(sock, _login_frame(server.password))).fixed == "0"
        sock.close()
        with store.reading() as conn:
            actions = [r.action for r in conn.execute(select(db.audit_log.c.action))]
        assert "kiosk.revoke" in actions
    finally:
        server.central.stop()


def test_add_sip2_account_prints_the_password_once_and_audits_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'central.db'}"
    command = [sys.executable, "-m", "bookcorner", "central", "add-sip2-account", "desk-2", "--db", url]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip()
    assert len(password) >= 16 and "shown only once" in done.stderr
    again = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--reissue" in again.stderr
    bad = subprocess.run([*command[:5], "bad login!", "--db", url], check=False, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "letters, digits" in bad.stderr

    from bookcorner.central.services.sip2_accounts import authenticate

    store = db.Store(url)
    try:
        assert authenticate(store, "desk-2", password) == "sip2-desk-2"
        assert authenticate(store, "desk-2", password + "x") is None
        with store.reading() as conn:
            stored = {r.token_hash for r in conn.execute(select(db.credentials.c.token_hash))}
            actions = [(r.action, r.target) for r in conn.execute(select(db.audit_log.c.action, db.audit_log.c.target))]
        assert password not in str(stored) and ("sip2.add", "desk-2") in actions
    finally:
        store.dispose()


def test_sip2_over_tls_with_the_servers_certificate(tmp_path_factory):
    import ssl

    import trustme

    from tests.sip2.conftest import start

    folder = tmp_path_factory.mktemp("sip2-tls")
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    server = start(folder, "utf-8", 3.0, "--certfile", str(folder / "server.pem"), "--keyfile",
                   str(folder / "server.pem"))
    try:
        context = ssl.create_default_context()
        authority.configure_trust(context)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain, \
                context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
            assert sip2.decode(_ask(sock, _login_frame(server.password))).fixed == "1"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
            # a machine that speaks plain SIP2 to the TLS port gets no answer, just a close
            assert _ask(plain, _login_frame(server.password)) == b""
    finally:
        server.central.stop()


def test_sip2_with_several_server_processes(tmp_path_factory):
    """With --workers 2, the first worker serves SIP2 and both serve HTTP."""
    from tests.sip2.conftest import start

    server = start(tmp_path_factory.mktemp("sip2-workers"), "utf-8", 3.0, "--workers", "2")
    try:
        for attempt in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                assert sip2.decode(_ask(sock, _login_frame(server.password, attempt))).fixed == "1"
        assert requests.get(f"{server.central.url}/v1/health", timeout=10).status_code == 200
    finally:
        server.central.stop()
