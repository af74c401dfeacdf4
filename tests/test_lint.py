"""ruff and mypy on the product packages, with the project's own configuration
(pyproject.toml): the test command, so CI, fails on a finding of either and shows it.

Their caches (.ruff_cache, .mypy_cache) stay in the work tree, ignored by git: a warm run
takes about a second, a cold one (a fresh clone, as in CI) about twenty-five."""

from __future__ import annotations

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
