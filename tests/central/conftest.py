"""The dashboard's HTTP tests: a server of each test module's own, and a librarian signed in
to it (the shared servers, ``central`` and ``central_sqlite``, are in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.central.dashboard_client import Librarian
from tests.central.harness import BACKENDS, CentralServer, running_server
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
