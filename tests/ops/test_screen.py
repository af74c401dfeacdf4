"""The kiosk screen's choice at install (ops/screen.py): what it says when apt-get fails. The choice
itself is tested on a throwaway root in test_install.py."""

from __future__ import annotations

from bookcorner.ops.screen import apt_error


def test_apt_gets_failure_is_told_by_its_first_error():
    """Found by the lab (issue 16): with no network the installer quoted apt-get's closing advice
    ("maybe run apt-get update") instead of the error naming the cause."""
    output = ("Reading package lists...\n"
              "E: Failed to fetch http://deb.debian.org/debian/pool/main/c/cage/cage_0.1.4-4_amd64.deb  "
              "Temporary failure resolving 'deb.debian.org'\n"
              "E: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n")
    assert apt_error(output).endswith("Temporary failure resolving 'deb.debian.org'")
    assert apt_error("some warning\nlast words\n") == "last words"
    assert apt_error("") == ""
