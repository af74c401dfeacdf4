"""ruff, mypy and the import contracts on the product packages, with the project's own configuration
(pyproject.toml): the test command, so CI, fails on a finding of either and shows it.

Their caches (.ruff_cache, .mypy_cache) stay in the work tree, ignored by git: a warm run
takes about a second, a cold one (a fresh clone, as in CI) about twenty-five."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def test_ruff_finds_nothing_in_the_product_code():
    done = _run("ruff", "check", "--no-fix", ".")
    assert done.returncode == 0, f"ruff check found problems:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing_in_the_product_code():
    done = _run("mypy")  # the packages, the strictness and the third-party exceptions: [tool.mypy]
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"


def test_the_import_contracts_hold():
    # the layers and the forbidden imports: [tool.importlinter] in pyproject.toml
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"an import breaks the program's layers:\n{done.stdout}{done.stderr}"


#: the program's parts, as top-level folders of the checkout (each installed as bookcorner.<part>)
PARTS = sorted(path.parent.name for path in ROOT.glob("*/__init__.py")
               if path.parent.name not in ("bookcorner", "tests", "bench"))
BY_FOLDER_NAME = re.compile(rf"^\s*(?:from|import) ({'|'.join(PARTS)})(?:\.|\s|$)", re.MULTILINE)


def test_code_imports_the_parts_through_the_bookcorner_package():
    """`from bookcorner.kiosk import ...`, never `from kiosk import ...`: from the checkout both would
    work, as two copies of the same module (two registries, two sets of classes)."""
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    found = [f"{name}: {match.group(0).strip()}" for name in tracked if not (ROOT / name).is_symlink()
             for match in BY_FOLDER_NAME.finditer((ROOT / name).read_text(encoding="utf-8"))]
    assert not found, "import through bookcorner.<part>:\n" + "\n".join(found)


#: where an event's payload is read by key: decoding at the boundary (circulation.events: the typed
#: payloads and their decoding; central.validate: what arrives, checked before it is decoded;
#: central.payloads: the central database's stored payloads) and the migrations (each the record of
#: one schema change, written once, against the payloads as they were then)
PAYLOAD_DECODERS = ("circulation/events.py", "central/validate.py", "central/payloads.py")
BY_KEY = re.compile(r"payload\s*\[|payload\.get\(")


def test_no_payload_is_read_by_key_outside_the_decoding_modules():
    """Every event type's payload is one typed struct (circulation.events): read by attribute
    everywhere but where builtins become those structs."""
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for part in PARTS for path in sorted((ROOT / part).rglob("*.py"))
             if str(path.relative_to(ROOT)) not in PAYLOAD_DECODERS and "migrations/versions" not in str(path)
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if BY_KEY.search(line)]
    assert not found, "a payload read by key (decode it: circulation.events.decode_payload):\n" + "\n".join(found)
