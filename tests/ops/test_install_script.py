"""scripts/install's shell side: whether it needs a C compiler (found by the lab, issue 16: an
offline install from a wheelhouse ran apt-get against the network for a compiler it did not need)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ops.conftest import ROOT


def needs_compiler(*args: str) -> bool:
    done = subprocess.run(["bash", "-c", '. scripts/venv.sh; needs_compiler "$@"', "needs_compiler", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stderr == ""
    return done.returncode == 0


def test_a_wheelhouse_with_evdev_built_needs_no_compiler(tmp_path: Path):
    (tmp_path / "evdev-1.7.1-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    (tmp_path / "textual-0.86.3-py3-none-any.whl").write_bytes(b"")
    assert not needs_compiler(str(tmp_path))


def test_without_an_evdev_wheel_evdev_is_built_here(tmp_path: Path):
    assert needs_compiler()  # from the package index
    assert needs_compiler("")
    (tmp_path / "evdev-1.7.1.tar.gz").write_bytes(b"")  # the source, as PyPI ships it
    assert needs_compiler(str(tmp_path))


def test_the_installer_asks_before_building():
    script = (ROOT / "scripts" / "install").read_text()
    assert 'if needs_compiler "$wheelhouse"; then ensure_compiler; fi' in script
    assert script.index("needs_compiler") < script.index("pip install")
