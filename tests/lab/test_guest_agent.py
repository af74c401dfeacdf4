"""The lab's agent (lab/guest_agent.py) run here, its port a real socket: it answers the host's
commands inside the guest only, where a boot whose agent did not answer ended a soak at cut 40
without saying why. Each case below is one way an agent stops answering: a command that hangs
held every later answer back, a child that left the command's session held its output pipe (and
the answer) for ever, and a line that was JSON but not a request killed the agent."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def agent(tmp_path):
    """The agent's module as the lab installs it (its placeholders filled), its console a file."""
    console = tmp_path / "console"
    source = (ROOT / "lab" / "guest_agent.py").read_text().replace("__WAIT__", "5").replace(
        "__IDLE__", "Tap your card").replace("/dev/__CONSOLE__", str(console))
    path = tmp_path / "lab_agent.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lab_agent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.console_path = console
    return module


class Host:
    """The host's end of lab.ctl: requests written, answers read a line at a time."""

    def __init__(self, agent) -> None:
        self.end, guest = socket.socketpair()
        self.channel = guest.makefile("rwb", buffering=0)
        self.thread = threading.Thread(target=agent.serve, args=(self.channel, True), daemon=True)
        self.thread.start()
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.end.sendall(data)

    def ask(self, number: int, command: str, timeout: float = 30) -> None:
        self.send(json.dumps({"id": number, "sh": command, "timeout": timeout}).encode() + b"\n")

    def answer(self, within: float) -> dict:
        deadline = time.monotonic() + within
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer in {within} s")
            self.end.settimeout(left)
            chunk = self.end.recv(65536)
            assert chunk, "the agent hung up"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.end.close()
        self.thread.join(5)


@pytest.fixture
def host(agent):
    made = Host(agent)
    yield made
    made.close()


def test_a_command_that_hangs_does_not_hold_back_the_answer_to_the_next(host):
    host.ask(1, "sleep 20", timeout=60)
    host.ask(2, "echo here")
    began = time.monotonic()
    reply = host.answer(within=10)
    assert reply == {"id": 2, "rc": 0, "out": "here\n"}
    assert time.monotonic() - began < 10


def test_a_child_that_left_the_commands_session_does_not_keep_the_answer_for_ever(host, tmp_path):
    escaped = tmp_path / "escaped.pid"
    # setsid: the sleep is in a session of its own, out of the kill's reach, and holds the output pipe
    host.ask(1, f"setsid sleep 60 & echo $! > {escaped}; sleep 60", timeout=1)
    try:
        began = time.monotonic()
        reply = host.answer(within=15)
        assert reply["id"] == 1 and reply["rc"] == 124 and "timed out after 1 s" in reply["out"]
        assert time.monotonic() - began < 15
        host.ask(2, "echo still here")
        assert host.answer(within=10) == {"id": 2, "rc": 0, "out": "still here\n"}
    finally:
        if escaped.exists() and escaped.read_text().strip():
            os.kill(int(escaped.read_text()), signal.SIGKILL)


def test_lines_that_are_not_requests_are_passed_over_and_the_next_request_is_answered(host, agent):
    # a hello's tail from before the port was open ("5}"), JSON that is no request, a bad id
    host.send(b'5}\n5\n[1, 2]\n"sh"\n{"id": "x", "sh": "true"}\n{"sh": "true"}\n{"id": 1}\n')
    host.ask(7, "echo answered")
    assert host.answer(within=10) == {"id": 7, "rc": 0, "out": "answered\n"}


def test_a_long_answer_comes_whole_and_answers_do_not_interleave(host):
    for number in range(1, 5):
        host.ask(number, "head -c 300000 /dev/zero | tr '\\0' x")
    replies = sorted((host.answer(within=30) for _ in range(4)), key=lambda reply: reply["id"])
    assert [reply["id"] for reply in replies] == [1, 2, 3, 4]
    assert all(reply["rc"] == 0 and reply["out"] == "x" * 300000 for reply in replies)


def test_a_command_longer_than_one_argument_may_be_is_run_whole(host):
    # the soak's check: every acknowledged id in a here-document; past 128 KiB, `bash -c` got E2BIG
    ids = [f"{number:08d}-4c5e-4f8e-9d1a-000000000000" for number in range(6000)]  # 270 KB
    host.ask(9, "sort -r <<'IDS' | head -n 1\n" + "\n".join(ids) + "\nIDS")
    assert host.answer(within=30) == {"id": 9, "rc": 0, "out": ids[-1] + "\n"}


def test_a_command_started_in_the_background_is_answered_at_once(host, tmp_path):
    log = tmp_path / "background.log"
    host.send(json.dumps({"id": 3, "sh": "sleep 1; echo later", "background": True, "log": str(log)}).encode()
              + b"\n")
    assert host.answer(within=5) == {"id": 3, "rc": 0, "out": ""}
    deadline = time.monotonic() + 10
    while "later" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.read_text() == "later\n"


def test_the_agent_says_on_the_console_when_its_port_opens(agent, tmp_path):
    port = tmp_path / "lab.ctl"
    port.write_bytes(b"")
    with agent.open_port(str(port)):
        pass
    assert agent.console_path.read_text().startswith("LAB agent ctl-open ")
