"""End to end, as a person at the kiosk: the real ``bookcorner`` command in a terminal
(tmux), keys sent as a keyboard-style scanner and card reader send them, the screen read
back from the terminal. A child borrows a book, says Done, and brings it back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bookcorner.circulation.events import EventType
from bookcorner.journal.journal import JournalReader

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BOOKCORNER = [sys.executable, "-m", "bookcorner"]


class Terminal:
    """A tmux session running one command, 100x32, with its own tmux server."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.socket = f"bookcorner-test-{uuid.uuid4().hex[:8]}"
        self.name = "kiosk"
        env = {k: v for k, v in os.environ.items() if k not in ("BOOKCORNER_CONFIG", "TMUX")}
        env["TERM"] = "xterm-256color"
        self.tmux("new-session", "-d", "-s", self.name, "-x", "100", "-y", "32", f"{command}; echo EXIT=$?; sleep 60",
                  env=env, cwd=cwd)

    def tmux(self, *args: str, **kwargs) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              **kwargs)
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, "-S", "-40")

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")

    def type(self, text: str) -> None:
        """A scanner or a keyboard-style reader: the whole line at once, then Enter."""
        self.tmux("send-keys", "-t", self.name, "-l", text)
        self.tmux("send-keys", "-t", self.name, "Enter")

    def key(self, name: str) -> None:
        self.tmux("send-keys", "-t", self.name, name)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def demo_codes():
    from bookcorner.demo.school import build_demo_school

    hints = build_demo_school(datetime.now(ZoneInfo("Asia/Shanghai")).date()).hints
    return {"student": hints[0].code, "book": hints[6].code}


def checked_out_and_in(data_dir: Path, book: str) -> list[EventType]:
    return [event.type for event in JournalReader(data_dir / "journal").events_after(0)]


def test_a_child_borrows_and_returns_a_book_in_the_demo(tmp_path, demo_codes):
    data_dir = tmp_path / "demo-data"
    command = " ".join(BOOKCORNER + ["demo", "--data-dir", str(data_dir)])
    terminal = Terminal(command, Path(__file__).resolve().parents[2])
    try:
        screen = terminal.wait_for("Tap your card")
        assert demo_codes["student"] in screen and demo_codes["book"] in screen  # codes to try, on screen
        terminal.type(demo_codes["student"])
        terminal.wait_for("You may borrow 2 more")
        terminal.type(demo_codes["book"])
        screen = terminal.wait_for("Borrowed!")
        assert "借好了！" in screen
        terminal.key("Escape")  # Done
        terminal.wait_for("Tap your card")
        terminal.type(demo_codes["book"])  # given back at the idle screen, no card
        screen = terminal.wait_for("is back.")
        assert "Thank you, " in screen
        terminal.key("C-q")
        terminal.wait_for("EXIT=0")
    finally:
        terminal.close()
    assert checked_out_and_in(data_dir, demo_codes["book"]) == [EventType.CHECKED_OUT, EventType.CHECKED_IN]


def test_the_kiosk_command_runs_a_configured_corner_in_chinese(tmp_path, demo_codes):
    data_dir = tmp_path / "corner"
    assert subprocess.run(BOOKCORNER + ["demo", "--load-only", "--data-dir", str(data_dir)],
                          capture_output=True, timeout=60).returncode == 0
    settings = tmp_path / "kiosk.toml"
    settings.write_text(f'[kiosk]\nlanguage = "zh_CN"\nname = "三年级一班"\ndata_dir = "{data_dir}"\n'
                        '[screen]\nsound = "off"\n', encoding="utf-8")
    command = " ".join(BOOKCORNER + ["--config", str(settings), "kiosk"])
    terminal = Terminal(command, tmp_path)
    try:
        terminal.wait_for("请刷卡")
        terminal.type(demo_codes["student"])
        terminal.wait_for("你还可以借2本")
        terminal.type(demo_codes["book"])
        terminal.wait_for("借好了！")
        time.sleep(1.1)  # a card held on the reader is one tap: this is the child tapping again
        terminal.type(demo_codes["student"])  # a second tap ends the session
        terminal.wait_for("请刷卡")
        terminal.type(demo_codes["book"])
        terminal.wait_for("已归还")
        for key in ("C-q", "C-c"):  # no way out for a child
            terminal.key(key)
        time.sleep(0.5)
        assert "EXIT=" not in terminal.screen()
    finally:
        terminal.close()
    assert checked_out_and_in(data_dir, demo_codes["book"]) == [EventType.CHECKED_OUT, EventType.CHECKED_IN]
    assert "Traceback" not in (data_dir / "logs" / "kiosk.log").read_text()
