"""The pinned requirements the installer installs agree with pyproject.toml: every
dependency of the kiosk and every central extra is pinned, at a version its range allows,
and a kiosk gets none of the central server's libraries."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ops.install import CENTRAL_LOCK_FILE, LOCK_FILE

ROOT = Path(__file__).resolve().parents[2]
#: the Pi's platform: markers are read for it
PI = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64", "python_version": "3.11"}


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{lock.name}: {line!r} is not pinned exactly"
            found[canonicalize_name(name)] = version
    return found


def wanted(group: list[str]) -> list[Requirement]:
    return [req for req in map(Requirement, group) if req.marker is None or req.marker.evaluate(PI)]


def test_every_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    kiosk, central = pins(LOCK_FILE), pins(CENTRAL_LOCK_FILE)
    for requirements, lock, name in ((project["dependencies"], kiosk, LOCK_FILE.name),
                                     (project["optional-dependencies"]["central"], central, CENTRAL_LOCK_FILE.name)):
        for req in wanted(requirements):
            key = canonicalize_name(req.name)
            assert key in lock, f"{req.name} is not pinned in {name}"
            assert req.specifier.contains(lock[key], prereleases=True), f"{name}: {req.name}=={lock[key]} not in {req}"
            for extra in req.extras:  # psycopg[binary]: the extra's package is pinned too
                assert canonicalize_name(f"{req.name}-{extra}") in lock, f"{req} needs its extra pinned in {name}"
    assert not set(kiosk) & set(central), "a package is pinned twice (the library computer installs both files)"
    assert not {"fastapi", "sqlalchemy", "uvicorn", "openpyxl"} & set(kiosk), "a kiosk gets no central libraries"
