"""Network weather, for real: a closed port, a server that never answers, one that resets
the connection, one that answers garbage or half a reply, a busy server with
Retry-After, a certificate the kiosk does not trust, a name that does not resolve.

Each time: the round fails with a reason in the log and in the status the kiosk shows,
nothing is acknowledged, and once the real server is back every event arrives once."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest
import trustme
from sqlalchemy import select

from bookcorner.central import db
from bookcorner.sync.daemon import backoff
from bookcorner.sync.status import Phase, read_status
from tests.central.harness import CentralServer
from tests.sync.kiosk import TestKiosk
from tests.sync.netfaults import ScriptedServer, answer, closed_port, never_answer, reset_after_request


def stored_seqs(central, kiosk_id: str) -> list[int]:
    with central.store.reading() as conn:
        return list(conn.execute(select(db.events.c.seq).where(db.events.c.kiosk_id == kiosk_id)
                                 .order_by(db.events.c.seq)).scalars())


def fails_then_recovers(kiosk: TestKiosk, central, url: str, phase: Phase, reason: str, caplog, **settings) -> None:
    last = kiosk.record(kiosk.loans_and_returns(0, 3))
    with caplog.at_level(logging.WARNING, logger="sync"):
        result = kiosk.daemon(server_url=url, **settings).run_round()
    assert not result.ok and result.acked_seq == 0 and result.pending == last
    assert reason in result.error.message
    assert any(reason in record.getMessage() for record in caplog.records), "the reason is logged"
    status = read_status(kiosk.root)
    assert status.phase is phase and reason in status.last_error and status.acked_seq == 0
    assert status.last_attempt and status.last_success is None

    recovered = kiosk.daemon().run_round()
    assert recovered.ok and recovered.acked_seq == last
    assert stored_seqs(central, kiosk.kiosk_id) == list(range(1, last + 1))
    status = read_status(kiosk.root)
    assert status.phase is Phase.IDLE and status.last_error is None


@pytest.fixture
def kiosk(central_sqlite, kiosk_id, tmp_path) -> TestKiosk:
    return TestKiosk(tmp_path, kiosk_id, central_sqlite.url, central_sqlite.add_kiosk(kiosk_id))


def test_connection_refused(kiosk, central_sqlite, caplog):
    fails_then_recovers(kiosk, central_sqlite, f"http://127.0.0.1:{closed_port()}", Phase.OFFLINE,
                        "refused the connection", caplog)


def test_a_server_that_never_answers(kiosk, central_sqlite, caplog):
    with ScriptedServer(never_answer) as silent:
        started = time.monotonic()
        fails_then_recovers(kiosk, central_sqlite, silent.url, Phase.OFFLINE, "did not answer within 0.5 s", caplog,
                            read_timeout_s=0.5)
        assert time.monotonic() - started < 5


def test_a_connection_reset(kiosk, central_sqlite, caplog):
    with ScriptedServer(reset_after_request) as resetting:
        fails_then_recovers(kiosk, central_sqlite, resetting.url, Phase.OFFLINE, "cut off", caplog)


def test_an_answer_that_is_not_json(kiosk, central_sqlite, caplog):
    with ScriptedServer(answer("200 OK", b"<html>captive portal</html>")) as garbage:
        fails_then_recovers(kiosk, central_sqlite, garbage.url, Phase.ERROR, "not understood", caplog)


def test_an_answer_cut_short(kiosk, central_sqlite, caplog):
    with ScriptedServer(answer("200 OK", b'{"kiosk_id": "x", "batch_id": "y", "appl', declared_length=4000)) as cut:
        fails_then_recovers(kiosk, central_sqlite, cut.url, Phase.ERROR, "cut short", caplog)


def test_json_that_answers_another_batch(kiosk, central_sqlite, caplog):
    body = b'{"kiosk_id":"x","batch_id":"other","applied_seq":999,"results":[],"needs_review":0,"server_time":"now"}'
    with ScriptedServer(answer("200 OK", body)) as liar:
        fails_then_recovers(kiosk, central_sqlite, liar.url, Phase.ERROR, "does not match the batch", caplog)


def test_a_server_error(kiosk, central_sqlite, caplog):
    body = b'{"error":"internal_error","detail":"the server failed; the error is in its log"}'
    with ScriptedServer(answer("500 Internal Server Error", body)) as broken:
        fails_then_recovers(kiosk, central_sqlite, broken.url, Phase.ERROR, "the server failed (500", caplog)


def test_a_busy_server_is_believed_about_when_to_come_back(kiosk, central_sqlite, caplog):
    busy_reply = answer("503 Service Unavailable", b'{"error":"busy","detail":"busy"}', "Retry-After: 7")
    with ScriptedServer(busy_reply) as busy:
        fails_then_recovers(kiosk, central_sqlite, busy.url, Phase.ERROR, "come back in 7 s", caplog)


def test_the_daemon_waits_as_long_as_retry_after_says(kiosk, central_sqlite):
    kiosk.record(kiosk.loans_and_returns(0, 1))
    with ScriptedServer(answer("503 Service Unavailable", b"{}", "Retry-After: 30")) as busy:
        daemon = kiosk.daemon(server_url=busy.url, retry_initial_s=0.01, retry_max_s=0.02)
        stop = threading.Event()
        runner = threading.Thread(target=daemon.run, args=(stop,))
        runner.start()
        time.sleep(1.5)
        stop.set()
        runner.join(5)
        daemon.close()
        assert busy.connections == 1  # without Retry-After it would have tried dozens of times
        assert read_status(kiosk.root).next_attempt is not None


def test_a_server_whose_certificate_the_kiosk_does_not_trust(central_sqlite, kiosk_id, tmp_path, caplog):
    """HTTPS as in production: the kiosk trusts the school's CA (ca_bundle) and nothing else."""
    authority, stranger = trustme.CA(), trustme.CA()
    for name, ca in (("school", authority), ("stranger", stranger)):
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / f"{name}.pem"))
        ca.cert_pem.write_to_path(str(tmp_path / f"{name}-ca.pem"))
    servers = {}
    try:
        for name in ("school", "stranger"):
            pem = str(tmp_path / f"{name}.pem")
            servers[name] = CentralServer(central_sqlite.db_url, tmp_path / f"{name}.log",
                                          "--certfile", pem, "--keyfile", pem).start()
        assert servers["school"].url.startswith("https://")
        kiosk = TestKiosk(tmp_path / "kiosk", kiosk_id, servers["school"].url, central_sqlite.add_kiosk(kiosk_id))
        last = kiosk.record(kiosk.loans_and_returns(0, 3))
        with caplog.at_level(logging.WARNING, logger="sync"):
            untrusted = kiosk.daemon(server_url=servers["stranger"].url,
                                     ca_bundle=str(tmp_path / "school-ca.pem")).run_round()
            system_cas = kiosk.daemon().run_round()  # the school's own CA is not one the system knows
        for result in (untrusted, system_cas):
            assert not result.ok and "certificate is not trusted" in result.error.message
            assert "ca_bundle" in result.error.message
        assert read_status(kiosk.root).phase is Phase.ERROR
        trusted = kiosk.daemon(ca_bundle=str(tmp_path / "school-ca.pem")).run_round()
        assert trusted.ok and trusted.acked_seq == last
    finally:
        for server in servers.values():
            server.stop()


def test_a_name_that_does_not_resolve(kiosk, central_sqlite, caplog):
    fails_then_recovers(kiosk, central_sqlite, "http://central.bookcorner.invalid:8443", Phase.OFFLINE,
                        "does not resolve", caplog)


def test_a_url_that_is_not_the_central_server(kiosk, central_sqlite, caplog):
    with ScriptedServer(answer("404 Not Found", b"no")) as other:
        fails_then_recovers(kiosk, central_sqlite, other.url, Phase.ERROR, "not a bookcorner central server", caplog)


def test_a_credential_the_server_does_not_know(kiosk, central_sqlite, caplog):
    good = kiosk.credential.read_text()
    kiosk.credential.write_text("bck1_not-the-right-one\n")
    last = kiosk.record(kiosk.loans_and_returns(0, 1))
    result = kiosk.daemon().run_round()
    assert not result.ok and "does not accept this kiosk's credential" in result.error.message
    kiosk.credential.write_text(good)
    assert kiosk.daemon().run_round().acked_seq == last


def test_backoff_grows_with_jitter_and_never_below_retry_after(kiosk):
    settings = kiosk.settings(retry_initial_s=2.0, retry_max_s=600.0, retry_after_max_s=3600.0)
    rng = random.Random(1)
    for failures, ceiling in ((1, 2.0), (2, 4.0), (5, 32.0), (20, 600.0)):
        delays = [backoff(failures, settings, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # spread out, so kiosks do not return together
    assert backoff(1, settings, rng, retry_after=120) >= 120
    assert backoff(1, settings, rng, retry_after=10**6) == 3600.0
