"""Filling a real filesystem, for the tests of what happens when the disk is full."""

from __future__ import annotations

import os
from pathlib import Path


def use_up_space(directory: Path) -> Path:
    """Write a file into ``directory`` until its filesystem refuses another byte; returns
    the file (unlink it to free the space again)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (4096, 256, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler
