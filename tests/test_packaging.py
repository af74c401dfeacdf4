"""bookcorner as it is installed, not as the checkout runs it: the wheel built from this
checkout holds every file its packages load at run time (catalogues, the example
configuration, the kiosk's stylesheet, the dashboard's templates and stylesheet, the
database migrations), and installed without its dependencies into a fresh venv it runs
from outside the checkout, on its own copy of those files.

The dependencies come from the venv running the tests, added *after* the new venv's own
site-packages (a .pth file), so the wheel's copy is what is imported; that venv's editable
install of the checkout is a .pth file too, which a path added this way does not process."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: folders in the checkout that are not part of the program
NOT_SHIPPED = {"tests", "bench"}
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def packages() -> list[str]:
    """The top-level packages pyproject.toml ships (its packages.find include patterns)."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(path.parent.name for path in ROOT.glob("*/__init__.py")
                  if any(fnmatch.fnmatch(path.parent.name, pattern) for pattern in patterns))


def build_pin(name: str) -> str:
    for line in (ROOT / "deploy" / "requirements-build.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}=="):
            return line.partition("==")[2]
    raise AssertionError(f"{name} is not pinned in deploy/requirements-build.txt")


def run(*command: str | Path, **options) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(word) for word in command], capture_output=True, text=True, timeout=120, **options)
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a clean copy of the checkout (no build/ or egg-info of a developer's
    to leak into it) with the venv's own setuptools (deploy/requirements-build.txt), offline."""
    pinned = build_pin("setuptools")
    try:
        have = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != pinned:
        why = (f"this venv has setuptools {have}, not the pinned {pinned} the wheel is built with: "
               "pip install -r deploy/requirements-build.txt (./scripts/test sets up such a venv)")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in packages():
        shutil.copytree(ROOT / package, source / package, ignore=JUNK)
    run(sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet", "--no-deps",
        "--no-build-isolation", "--no-index", "--wheel-dir", scratch / "dist", source)
    [built] = (scratch / "dist").glob("bookcorner-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed in it (not editable), and the tests' dependencies."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python, "install", "--quiet",
        "--no-deps", "--no-index", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "zz-dependencies.pth").write_text("".join(f"{path}\n" for path in ours), encoding="utf-8")
    return venv


def outside(venv: Path) -> dict:
    """Where and how the installed program runs: outside the checkout, without its PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "BOOKCORNER_CONFIG")}
    return {"cwd": venv.parent, "env": {**env, "HOME": str(venv.parent)}}


def test_every_top_level_package_is_shipped():
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} - NOT_SHIPPED
    assert set(packages()) == found, "add the package to [tool.setuptools.packages.find] include in pyproject.toml"


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = []
    for package in packages():
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                relative = path.relative_to(ROOT).as_posix()
                if relative not in names:
                    missing.append(relative)
    assert not missing, ("not in the wheel (add them to [tool.setuptools.package-data] in pyproject.toml, "
                         f"or give their folder an __init__.py): {missing}")
    for data in ("i18n/locale/zh_CN/LC_MESSAGES/kiosk.mo", "config/kiosk.example.toml", "kiosk/kiosk.tcss",
                 "central/dashboard/templates/base.html", "central/dashboard/static/dashboard.css",
                 "central/migrations/script.py.mako", "central/migrations/versions/0001_initial_schema.py"):
        assert data in names


def test_the_installed_program_runs_on_its_own_files(installed):
    help_text = run(installed / "bin" / "bookcorner", "--help", **outside(installed)).stdout
    assert "demo" in help_text and "central" in help_text
    check = textwrap.dedent(f"""
        import importlib, sys
        from pathlib import Path
        site = Path(sys.argv[1]).resolve()
        for name in {packages()!r}:
            where = Path(importlib.import_module(name).__file__).resolve()
            assert where.is_relative_to(site), f"{{name}} imported from {{where}}, not from the installed wheel"

        from bookcorner import i18n
        i18n.use_language("zh_CN")
        assert i18n._("Borrowed!") == "借好了！", i18n._("Borrowed!")
        i18n.use_language("en")

        from bookcorner import config
        assert config.load(config.EXAMPLE).kiosk.id

        import kiosk.app
        assert (Path(kiosk.app.__file__).parent / kiosk.app.KioskApp.CSS_PATH).is_file()

        from bookcorner.central import migrations
        from bookcorner.central.dashboard import site as dashboard
        dashboard.env.get_template("base.html")
        assert dashboard.CSS_PATH.is_file() and (migrations.HERE / "script.py.mako").is_file()
        print("ok")
    """)
    site = run(installed / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout
    done = run(installed / "bin" / "python", "-c", check, site.strip(), **outside(installed))
    assert done.stdout.strip() == "ok"
    # the central database's migrations, from the installed copy, on a new SQLite file
    database = installed.parent / "central.db"
    run(installed / "bin" / "bookcorner", "central", "migrate", "--db", database, **outside(installed))
    assert database.stat().st_size > 0
