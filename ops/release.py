"""What a release of bookcorner holds: the program's folders (``bookcorner/``'s links to its
parts kept as links, as in a checkout) and the files the installer reads beside them. The
tests' releases and the lab's are made by :func:`copy_release`."""

from __future__ import annotations

import shutil
from pathlib import Path

#: besides the program's folders: what the installer and its script read
RELEASE_FILES = ("pyproject.toml", "README.md", "deploy", "systemd", "scripts")
#: top-level folders with an __init__.py that are not part of the program
NOT_SHIPPED = ("tests", "bench")


def copy_release(checkout: Path, folder: Path) -> Path:
    """The checkout as a release unpacked in ``folder``."""
    for package in checkout.glob("*/__init__.py"):
        if package.parent.name not in NOT_SHIPPED:
            shutil.copytree(package.parent, folder / package.parent.name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    for name in RELEASE_FILES:
        source = checkout / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / name)
    return folder
