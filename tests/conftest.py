"""Fixtures shared by more than one test directory: the real central servers that the
central server's tests and the sync tests talk to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.central.harness import BACKENDS, CentralServer, running_server


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
