"""The dashboard's HTTP tests: a server of each test module's own, and a librarian signed in
to it (the shared servers, ``central`` and ``central_sqlite``, are in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bookcorner.central.db import Store
from tests.central.catalogue_servers import Misbehaving
from tests.central.dashboard_client import Librarian
from tests.central.harness import BACKENDS, CentralServer, database, running_server
from tests.central.standby import Pair, standby_problem


@pytest.fixture(scope="module", params=BACKENDS)
def board(request, tmp_path_factory) -> Iterator[CentralServer]:
    """A server of the module's own (the tests load reference data of their own)."""
    with running_server(request.param, tmp_path_factory.mktemp(f"dashboard-{request.param}")) as server:
        yield server


@pytest.fixture
def librarian(board) -> tuple[Librarian, str, str]:
    """A signed-in librarian: the client, the name, the credential."""
    name = "Ms Li " + uuid.uuid4().hex[:4]
    token = board.add_librarian(name)
    client = Librarian(board.url)
    assert client.sign_in(name, token).status_code == 303
    return client, name, token




@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[Store]:
    """A migrated central database of the test's own (SQLite, and PostgreSQL when one
    answers), opened in this process."""
    with database(request.param, tmp_path) as url:
        opened = Store(url, pool_size=2)
        opened.migrate()
        try:
            yield opened
        finally:
            opened.dispose()


@pytest.fixture
def standby_pair() -> Iterator[Pair]:
    """A PostgreSQL primary with a synchronous standby of the test's own (tests.central.standby)."""
    problem = standby_problem()
    if problem:
        pytest.skip(f"failover test skipped: {problem}")
    pair = Pair()
    try:
        yield pair.make()
    finally:
        pair.remove()




@pytest.fixture(scope="module")
def silent_server() -> Iterator[Misbehaving]:
    """A server that takes connections and never answers."""
    server = Misbehaving(None).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def junk_server() -> Iterator[Misbehaving]:
    """A server that answers every connection with junk and hangs up."""
    server = Misbehaving(b"\x00\xffHELLO this is no catalogue\r\n" * 20).start()
    try:
        yield server
    finally:
        server.stop()
