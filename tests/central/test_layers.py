"""The central server keeps its layers (../shared/ARCHITECTURE.md, "The central server in
layers"): the kiosks' API and the librarian's dashboard are routers of module-level
functions, the dashboard's forms are checked by a dependency, and the code already in
layers stays small enough to read: every function in ``central/`` (but its migrations)."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from radon.complexity import cc_rank, cc_visit

from bookcorner.central import db
from bookcorner.protocol.messages import API_PREFIX

ROOT = Path(__file__).resolve().parents[2]
#: files and folders (every .py under them) held to the limits below
CHECKED = ("central",)
#: left out: each migration is the record of one schema change, written once and never edited
#: (the first one declares every table of the initial schema in one upgrade())
NOT_CHECKED = ("central/migrations/versions",)
MAX_LINES = 60
#: radon's grades run A (simple) to F; C is cyclomatic complexity 11-20
WORST_GRADE = "C"


def _sources() -> list[Path]:
    paths = [ROOT / name for name in CHECKED]
    found = [p for path in paths for p in (sorted(path.rglob("*.py")) if path.is_dir() else [path])
             if not any(p.is_relative_to(ROOT / name) for name in NOT_CHECKED)]
    assert found and all(p.is_file() for p in found), CHECKED
    return found


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_is_longer_than_a_screen():
    # lengths from the syntax tree: radon's end line stops at a function's first nested def
    too_long = []
    for path in _sources():
        for function in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
            lines = (function.end_lineno or function.lineno) - first + 1
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}:{function.lineno} {function.name} ({lines} lines)")
    assert not too_long, too_long


def test_no_function_is_more_tangled_than_grade_c():
    tangled = []
    for path in _sources():
        blocks = list(cc_visit(path.read_text(encoding="utf-8")))
        while blocks:
            block = blocks.pop()
            blocks.extend([*getattr(block, "closures", []), *getattr(block, "methods", [])])
            if cc_rank(block.complexity) > WORST_GRADE:
                tangled.append(f"{path.relative_to(ROOT)}:{block.lineno} {block.name} "
                               f"(complexity {block.complexity}, grade {cc_rank(block.complexity)})")
    assert not tangled, tangled


def test_the_checks_see_what_they_should():
    """The two checks above find a long function and a tangled one when there is one."""
    lines = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    long_one = _functions(ast.parse(f"def long_one():\n{lines}\n"))[0]
    assert long_one.end_lineno is not None and long_one.end_lineno - long_one.lineno + 1 > MAX_LINES
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(25))
    (tangled,) = cc_visit(f"def tangled(x):\n{branches}\n    return -1\n")
    assert cc_rank(tangled.complexity) > WORST_GRADE


def test_every_api_route_is_a_module_level_function(tmp_path):
    from bookcorner.central.app import create_app

    store = db.Store(f"sqlite:///{tmp_path / 'layers.db'}")
    try:
        app = create_app(store)
    finally:
        store.dispose()
    api = [route for route in iter_route_contexts(app.routes) if (route.path or "").startswith(API_PREFIX + "/")]
    assert {route.path for route in api} == {f"{API_PREFIX}/{name}"
                                             for name in ("push", "reference", "kiosks", "imports", "health")}
    closures = [f"{route.path}: {route.endpoint.__qualname__}" for route in api
                if route.endpoint is None or "<locals>" in route.endpoint.__qualname__]
    assert not closures, closures
    assert all(route.endpoint.__module__.startswith("bookcorner.central.api.") for route in api if route.endpoint)


def _dashboard_routes(tmp_path) -> list[RouteContext]:
    from bookcorner.central.app import create_app
    from bookcorner.central.dashboard.site import PREFIX

    store = db.Store(f"sqlite:///{tmp_path / 'layers.db'}")
    try:
        app = create_app(store)
    finally:
        store.dispose()
    return [route for route in iter_route_contexts(app.routes)
            if route.path == PREFIX or (route.path or "").startswith(PREFIX + "/")]


def test_every_dashboard_route_is_a_module_level_function_of_an_area(tmp_path):
    from bookcorner.central.dashboard import AREAS

    routes = _dashboard_routes(tmp_path)
    assert len(routes) > 50  # every area's pages, forms and downloads
    closures = [f"{route.path}: {route.endpoint.__qualname__}" for route in routes
                if route.endpoint is None or "<locals>" in route.endpoint.__qualname__]
    assert not closures, closures
    areas = {area.__name__ for area in AREAS}
    assert {route.endpoint.__module__ for route in routes if route.endpoint} == areas


def _calls(dependant) -> list:
    """What a route's dependencies call, theirs included."""
    return [call for d in dependant.dependencies for call in (d.call, *_calls(d))]


def test_every_dashboard_form_is_checked_by_the_form_dependency(tmp_path):
    """A state-changing route is given its fields by ``deps.checked_form`` (session and
    form token), so none can forget to check; only signing in and the uploads (multipart
    forms, checked as they are read) read their own."""
    from bookcorner.central.dashboard import deps

    own = {"/dashboard/sign-in", "/dashboard/data-in/upload", "/dashboard/reading/upload",
           "/dashboard/registers/stock-take/upload"}
    posted = [route for route in _dashboard_routes(tmp_path) if "POST" in (route.methods or ())]
    assert all(isinstance(route.original_route, APIRoute) for route in posted)
    unchecked = [route.path for route in posted if route.path not in own and not any(
        isinstance(call, type(deps.checked_form)) for call in _calls(route.original_route.dependant))]
    assert not unchecked, unchecked


def test_the_services_import_no_http():
    """central/services/ is below HTTP: no FastAPI, Starlette or dashboard in it."""
    offending = []
    for path in sorted((ROOT / "central" / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        offending += [f"{path.name}: {name}" for name in imported
                      if name.split(".")[0] in ("fastapi", "starlette")
                      or name.startswith(("bookcorner.central.dashboard", "bookcorner.central.api"))]
    assert not offending, offending


def test_the_command_line_calls_services_never_pages():
    tree = ast.parse((ROOT / "central" / "commands.py").read_text(encoding="utf-8"))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "bookcorner.central.privacy" in imported  # (the walk sees imports inside functions too)
    assert not [name for name in imported if name.startswith("bookcorner.central.dashboard")]
