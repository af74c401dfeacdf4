"""Fixtures shared by more than one test directory: the real central servers that the
central server's tests and the sync tests talk to, and the real SMTP and Z39.50 servers that
the dashboard's HTTP and browser tests use."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from tests.central.catalogue_servers import YazZtest
from tests.central.harness import BACKENDS, CentralServer, running_server
from tests.central.mailbox import Mailbox


@pytest.fixture(scope="session", params=BACKENDS)
def central(request, tmp_path_factory) -> Iterator[CentralServer]:
    """One server per backend for the whole session (each test uses its own kiosk ids)."""
    with running_server(request.param, tmp_path_factory.mktemp(f"central-{request.param}")) as server:
        yield server


@pytest.fixture(scope="session")
def central_sqlite(tmp_path_factory) -> Iterator[CentralServer]:
    folder = tmp_path_factory.mktemp("central-sqlite-only")
    server = CentralServer(f"sqlite:///{folder / 'central.db'}", folder / "server.log").start()
    server.backend = "sqlite"
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kiosk_id() -> str:
    return "corner-" + uuid.uuid4().hex[:8]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback (aiosmtpd) that asks for a login: tests/central/mailbox.py."""
    box = Mailbox().start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def ztest(tmp_path_factory) -> Iterator[YazZtest]:
    """YAZ's Z39.50 and SRU test server (Debian's ``yaz``): tests/central/catalogue_servers.py."""
    if shutil.which("yaz-ztest") is None or shutil.which("yaz-client") is None:
        pytest.skip("Debian's yaz (yaz-ztest, yaz-client) is not installed: apt-get install yaz")
    zserver = YazZtest(tmp_path_factory.mktemp("ztest") / "ztest.log").start()
    try:
        yield zserver
    finally:
        zserver.stop()


#: the longest test modules, started first: pytest-xdist hands out whole modules (--dist
#: loadfile) in collection order, and a long one dealt out last leaves the other workers idle
LONGEST_FIRST = ("tests/ops/test_upgrade.py", "tests/ops/test_install.py", "tests/central/test_schemathesis.py",
                 "tests/central/test_bridge_reviews.py", "tests/central/test_bridge_page.py",
                 "tests/central/test_marc_files.py", "tests/sync/test_journal_goes_back.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep order
