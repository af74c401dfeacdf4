"""sd_notify for the sync daemon: real unix datagram sockets, and the real `bookcorner
syncd` process telling "systemd" (the test's socket) READY=1, WATCHDOG=1 and STOPPING=1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bookcorner.sync.notify import Watchdog, notify


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield path, sock
    sock.close()


def test_notify_sends_the_state_to_the_socket(listener):
    path, sock = listener
    assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
    assert sock.recv(4096) == b"READY=1"


def test_abstract_socket_names_start_with_an_at_sign():
    name = f"bookcorner-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify("STATUS=hello", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STATUS=hello"


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path):
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})  # no listener: logged, not raised
    assert not Watchdog({}).ping()


def test_watchdog_pings_at_most_every_half_interval(listener):
    path, sock = listener
    dog = Watchdog({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
    assert dog.every_s == pytest.approx(0.2)
    assert dog.ping()
    assert not dog.ping()  # too soon
    time.sleep(0.25)
    assert dog.ping()
    assert [sock.recv(64), sock.recv(64)] == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_a_start_up_holds_the_watchdog_off_and_then_puts_the_units_interval_back(listener):
    path, sock = listener
    dog = Watchdog({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "60000000"})
    assert dog.hold_off(600)
    assert sock.recv(64) == b"WATCHDOG_USEC=600000000"
    assert dog.resume()
    assert [sock.recv(64), sock.recv(64)] == [b"WATCHDOG_USEC=60000000", b"WATCHDOG=1"]
    # without a watchdog (no WatchdogSec=) nothing is sent
    quiet = Watchdog({"NOTIFY_SOCKET": str(path)})
    assert not quiet.hold_off(600) and not quiet.resume()
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(64)


def test_a_watchdog_meant_for_another_process_is_ignored(listener):
    path, _sock = listener
    assert Watchdog({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}).every_s is None


def test_syncd_says_ready_pings_the_watchdog_and_says_stopping(listener, tmp_path):
    path, sock = listener
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCORNER_", "NOTIFY_", "WATCHDOG_"))}
    env.update(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="500000", HOME=str(tmp_path))
    root = Path(__file__).resolve().parents[2]
    daemon = subprocess.Popen([sys.executable, "-m", "bookcorner", "syncd", "--data-dir", str(tmp_path / "data")],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        received = [sock.recv(64)]
        assert received == [b"READY=1"]
        # no server is configured: the rounds fail, and the loop still turns and says so
        received += [sock.recv(64), sock.recv(64)]
        assert received[1:] == [b"WATCHDOG=1", b"WATCHDOG=1"]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, daemon.stderr.read().decode()
        sock.settimeout(0)
        rest = []
        while True:
            try:
                rest.append(sock.recv(64))
            except BlockingIOError:
                break
        assert rest[-1:] == [b"STOPPING=1"] and set(rest[:-1]) <= {b"WATCHDOG=1"}, rest
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        daemon.stderr.close()
