from __future__ import annotations

import resource
import signal
import subprocess
import uuid
from datetime import date
from pathlib import Path

import pytest

from bookcorner.circulation.events import Checkout, EventDraft, EventType
from bookcorner.journal.clock import FixedClock
from tests.disk import use_up_space
from tests.school import MONDAY


def checkout_draft(n: int) -> EventDraft:
    return EventDraft(EventType.CHECKED_OUT, "S01",
                      Checkout(item_id=f"I{n:05d}", patron_id="S01", card_id="0006547886", code=f"3{n:013d}",
                               due=date(2026, 11, 30)))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY)


@pytest.fixture(params=["tmpfs", "quota"])
def full_disk(tmp_path: Path, request):
    """A directory that fills up for real. "tmpfs": a really small filesystem (256 KiB),
    skipped where this user may not mount one. "quota": a file-size limit
    (RLIMIT_FSIZE) that the kernel enforces with EFBIG, as a disk quota would. Yields
    (directory, fill) where fill() uses up the space and returns a function freeing it."""
    target = tmp_path / "small"
    target.mkdir()
    if request.param == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()}); the quota variant runs")

        def fill():
            return use_up_space(target).unlink

        try:
            yield target, fill
        finally:
            subprocess.run(["umount", str(target)], check=False)
        return

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill():
        largest = max((p.stat().st_size for p in target.rglob("*") if p.is_file()), default=0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest, hard))
        return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    try:
        yield target, fill
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.fixture
def kiosk_id() -> str:
    return "corner-" + uuid.uuid4().hex[:6]
