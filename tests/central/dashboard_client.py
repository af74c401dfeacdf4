"""A librarian's browser, minus the browser: a requests session that signs in through
the dashboard's own forms (for the dashboard's HTTP tests)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.central.harness import BACKENDS, CentralServer, running_server

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Librarian:
    def __init__(self, url: str) -> None:
        self.url = url + "/dashboard"
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=15, **kw)

    def post(self, path: str, data: dict, **kw) -> requests.Response:
        return self.http.post(self.url + path, data=data, allow_redirects=False, timeout=15, **kw)

    def sign_in(self, name: str, credential: str) -> requests.Response:
        form = self.get("/sign-in")
        assert form.status_code == 200
        return self.post("/sign-in", {"csrf": CSRF.search(form.text).group(1), "name": name,
                                      "credential": credential})

    def csrf(self) -> str:
        page = self.get("/end-of-day")
        assert page.status_code == 200, page.status_code
        return CSRF.search(page.text).group(1)


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
