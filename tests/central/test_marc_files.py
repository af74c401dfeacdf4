"""Real MARC files: pymarc's own test files (damaged leaders and directories, MARC-8 and
UTF-8 in every state, CP1251 read as MARC-8, UNIMARC, MARCXML with a broken leader...),
uploaded as catalogues through the dashboard of a real server on each database. Every one
either previews its records and imports them, or names each record it cannot take by its
position with a message in the librarian's language; none gives a 5xx or raw JSON.

The files are not in pymarc's wheel: the test fetches the sdist of the version the server
is deployed with (deploy/requirements-central.txt) once from the package index (its Simple
API names the sdist and its SHA-256, checked here), into pytest's cache (or a temporary folder),
and is skipped when the index cannot be reached. (Not ``pip download --no-binary``: pip builds
the sdist's metadata in an isolated environment first, 40 s of setuptools for a tarball.)"""

from __future__ import annotations

import hashlib
import html
import io
import re
import tarfile
from pathlib import Path

import pytest
import requests

from tests.central.dashboard_client import Librarian
from tests.central.test_data_in import confirm, staged, upload

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = (".mrc", ".dat", ".xml")
PROBLEM = re.compile(r'<tr data-row="(\d+)"><td>(\d+)</td><td>[^<]*</td><td>([^<]*)</td></tr>')
ROWS_READ = re.compile(r'<li id="count-rows">[^:<]*[:：] ?(\d+)</li>')
COUNT = re.compile(r'<li id="count-(added|changed|unchanged)">[^<]*?(\d+)</li>')
CJK = re.compile(r"[\u4e00-\u9fff]")


def locked_pymarc() -> str:
    text = (ROOT / "deploy" / "requirements-central.txt").read_text()
    found = re.search(r"^pymarc==([^\s;\\]+)", text, re.MULTILINE)
    assert found, "deploy/requirements-central.txt pins no pymarc version"
    return found.group(1)


#: the package index's Simple API (PEP 691, as JSON): what pip itself reads
INDEX = "https://pypi.org/simple"


def _sdist(version: str) -> bytes:
    """pymarc's sdist of ``version`` as the package index serves it, its SHA-256 checked."""
    name = f"pymarc-{version}.tar.gz"
    try:
        listing = requests.get(f"{INDEX}/pymarc/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                               timeout=60)
        listing.raise_for_status()
        files = [entry for entry in listing.json()["files"] if entry["filename"] == name]
        if not files:
            pytest.skip(f"the package index lists no {name}")
        body = requests.get(files[0]["url"], timeout=120)
        body.raise_for_status()
    except (requests.RequestException, ValueError, KeyError) as problem:
        pytest.skip(f"pymarc {version}'s sdist could not be downloaded (is PyPI reachable?): {problem}")
    assert hashlib.sha256(body.content).hexdigest() == files[0]["hashes"]["sha256"], "the sdist is not the index's"
    return body.content


def _fetch(version: str, into: Path) -> None:
    """pymarc's sdist from the package index, and its test/ MARC files put in ``into``."""
    content = _sdist(version)
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(content)) as sdist:
        for member in sdist:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[1] == "test" and parts[2].endswith(SUFFIXES):
                source = sdist.extractfile(member)
                assert source is not None
                (into / parts[2]).write_bytes(source.read())
    (into / "complete").write_text(version)


@pytest.fixture(scope="session")
def pymarc_files(request, tmp_path_factory) -> list[Path]:
    version = locked_pymarc()
    cache = getattr(request.config, "cache", None)
    folder = (cache.mkdir(f"pymarc-{version}-test-files") if cache is not None
              else tmp_path_factory.mktemp(f"pymarc-{version}-test-files"))
    if not (folder / "complete").exists():
        _fetch(version, folder)
    files = sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIXES))
    assert len(files) >= 20, f"pymarc {version}'s sdist has only {[p.name for p in files]} in test/"
    return files


def _problems(page: str) -> list[tuple[int, str]]:
    return [(int(row), html.unescape(text)) for row, shown, text in PROBLEM.findall(page) if row == shown]


def test_pymarc_s_own_test_files_import_or_are_refused_record_by_record(board, librarian, pymarc_files):
    client, _name, _token = librarian
    imported, named = [], []
    for path in pymarc_files:
        answer = upload(client, "catalogue", path.name, path.read_bytes())
        assert answer.status_code < 500, (path.name, answer.status_code, answer.text[-500:])
        assert '{"error"' not in answer.text and '"detail"' not in answer.text, path.name
        # every one of pymarc's files has at least one record this can place: it is previewed
        token = staged(answer)
        page = client.get(f"/data-in/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path.name
        read = int(ROWS_READ.search(page.text).group(1))
        counts = {name: int(number) for name, number in COUNT.findall(page.text)}
        problems = _problems(page.text)
        assert read >= 1, path.name
        assert '{"error"' not in page.text, path.name
        if not problems:
            # previewed whole: confirmed, its books are in the catalogue
            assert counts["added"] + counts["changed"] + counts["unchanged"] >= 1, (path.name, counts)
            checked = {"duplicates_checked": "yes"} if 'name="duplicates_checked"' in page.text else {}
            done = confirm(client, token, **checked)
            assert done.status_code == 303, (path.name, done.status_code, done.text[-500:])
            imported.append(path.name)
            continue
        # named record by record: each problem on a record of the file, in words, and in Chinese
        assert all(1 <= row <= read and text.strip() for row, text in problems), (path.name, problems)
        chinese = _problems(client.get(f"/data-in/{token}?lang=zh_CN").text)
        client.get("/data-in?lang=en")  # the choice is kept (a cookie): back to English for the next file
        assert [row for row, _text in chinese] == [row for row, _text in problems], path.name
        assert all(CJK.search(text) for _row, text in chinese), (path.name, chinese)
        assert 'id="confirm" disabled' in page.text, path.name
        named.append(path.name)
    # the files pymarc keeps to test broken input are refused record by record, the others taken
    assert {"bad_records.mrc", "1251.dat", "bad_tag.xml"} <= set(named), named
    assert {"marc.dat", "test.dat", "batch.xml", "one.dat"} <= set(imported), imported
