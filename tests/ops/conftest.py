"""What the installer tests share: the pinned wheels (fetched once), a throwaway root
standing for a fresh Bookworm, and releases of this checkout to install and upgrade."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bookcorner.ops.release import copy_release
from bookcorner.ops.install import BUILD_LOCK_FILE, CENTRAL_LOCK_FILE, LOCK_FILE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """The pinned dependencies as wheels (what a school without internet carries on a stick).
    Fetched once per run: pytest-xdist's workers share the run's folder, the first one to
    come fills it while the others wait on its lock."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, complete = shared / "wheelhouse", shared / "wheelhouse.complete"
    with open(shared / "wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            _fill(folder)
            complete.write_text("")
    return folder


def _fill(folder: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    done = subprocess.run([*pip, "download", "--no-deps", "-r", str(LOCK_FILE), "-r", str(CENTRAL_LOCK_FILE), "-r",
                           str(BUILD_LOCK_FILE), "-d", str(folder)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"no package index to fetch the pinned dependencies from: {done.stderr.strip()[-300:]}")
    for sdist in folder.glob("*.tar.gz"):  # evdev ships as source: build it once, as the Pi would
        built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder), str(sdist)], capture_output=True,
                               text=True, timeout=300)
        if built.returncode != 0:
            pytest.skip(f"cannot build {sdist.name}: {built.stderr.strip()[-300:]}")
        sdist.unlink()


@pytest.fixture
def system():
    """A directory standing for a fresh Bookworm's /: its accounts and login.defs. Others
    may enter it (as on a real /): the installer runs migrations as the kiosk's user."""
    root = Path(tempfile.mkdtemp(prefix="bookcorner-root-"))
    os.chmod(root, 0o755)
    (root / "etc").mkdir()
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), root / "etc" / name)
    if Path("/usr/lib/systemd/system").is_dir():  # systemd's own units, which ours are ordered against
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def release(folder: Path, changes: dict[str, str] | None = None) -> Path:
    """This checkout as a release unpacked in ``folder`` (a snapshot: other work on the
    checkout does not change it), with ``changes`` (relative path -> new text) applied."""
    copy_release(ROOT, folder)
    for name, text in (changes or {}).items():
        (folder / name).write_text(text)
    return folder


def bookcorner(release_dir: Path, *words: str) -> subprocess.CompletedProcess:
    """``bookcorner`` as the release in ``release_dir`` runs it (scripts/install does so)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCORNER_")}
    return subprocess.run([sys.executable, "-m", "bookcorner", *words], cwd=release_dir, env=env,
                          capture_output=True, text=True, timeout=600)
