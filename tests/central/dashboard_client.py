"""A librarian's browser, minus the browser: a requests session that signs in through
the dashboard's own forms (for the dashboard's HTTP tests; the signed-in ``librarian``
fixture is in tests/central/conftest.py)."""

from __future__ import annotations

import re

import requests

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
