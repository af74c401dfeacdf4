"""The lab's power-cut driver (lab/guest_driver.py) run here, against the demo school in a real
data directory: it runs only inside the lab's guest otherwise, where a rename in the desk it
drives (borrow/give_back became checkout/checkin) went unnoticed until a soak cut power 100
times over a driver that recorded nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bookcorner.journal.journal import JournalReader

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "lab" / "guest_driver.py"


def _lab_constants():
    spec = importlib.util.spec_from_file_location("lab_run", ROOT / "lab" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEMO_CARD, module.DEMO_BOOK


@pytest.fixture(scope="module")
def demo_kiosk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-driver")
    data = folder / "data"
    loaded = subprocess.run([sys.executable, "-m", "bookcorner", "demo", "--data-dir", str(data), "--load-only"],
                            capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    settings = folder / "kiosk.toml"
    settings.write_text(f'[kiosk]\nid = "demo-corner"\ndata_dir = "{data}"\n')
    return folder, data, settings


def _drive(folder: Path, settings: Path, card: str, book: str, rounds: int) -> tuple[int, list[str], str]:
    read, write = os.pipe()
    env = {**os.environ, "BOOKCORNER_CONFIG": str(settings), "LAB_CONTROL": str(folder / "control"),
           "LAB_ROUNDS": str(rounds)}
    # fd 3 as the guest's command line gives it (3>/dev/virtio-ports/lab.acks)
    done = subprocess.run(["bash", "-c", f'exec "$0" "$@" 3>&{write}', sys.executable, str(DRIVER), card, book],
                          env=env, pass_fds=(write,), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    return done.returncode, lines, done.stderr


def test_the_driver_records_loans_and_returns_and_acknowledges_each_one_in_the_journal(demo_kiosk):
    folder, data, settings = demo_kiosk
    card, book = _lab_constants()
    code, lines, stderr = _drive(folder, settings, card, book, rounds=3)
    assert code == 0, stderr
    assert lines[0] == "started" and lines[-1] == "done"
    acked = [line.split()[1] for line in lines if line.startswith("ack ")]
    assert len(acked) == 6  # a loan and its return, three times
    journal = {record["event_id"]: record for record in JournalReader(data / "journal").records_after(0)}
    assert set(acked) <= set(journal)
    assert [journal[event]["type"] for event in acked] == ["loan.checked_out", "loan.checked_in"] * 3
    # the negative control: each id written before its acknowledgement
    assert (folder / "control").read_text().split() == acked


def test_a_driver_that_cannot_record_tells_the_host_why(demo_kiosk):
    folder, _data, settings = demo_kiosk
    _card, book = _lab_constants()
    code, lines, _stderr = _drive(folder, settings, "9999999999", book, rounds=1)
    assert code != 0
    assert lines[0] == "started" and lines[-1].startswith("error ") and "9999999999" in lines[-1]
    assert not any(line.startswith("ack ") for line in lines)
