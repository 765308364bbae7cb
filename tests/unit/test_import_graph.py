"""The code's own import graph keeps the architecture: ``web -> api -> sfu`` one way only,
no import cycle inside the engine (a child module never imports its parent) nor inside the
application, route modules that only route, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules (of any package) it imports, TYPE_CHECKING imports included."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = _module_name(path)
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here
                    for _ in range(node.level - 1):
                        anchor = anchor.rsplit(".", 1)[0]
                    base = f"{anchor}.{node.module}" if node.module else anchor
                if node.module is None:  # from . import a, b: the submodules themselves
                    deps.update(f"{base}.{a.name}" for a in node.names)
                else:
                    deps.add(base)
        graph[name] = deps
    return graph


def runtime_import_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules it imports when it is imported: module-level imports only, not
    those under ``if TYPE_CHECKING:`` nor inside functions; ``from pkg import mod`` counts as
    an import of ``pkg.mod``."""
    paths = {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for stmt in ast.parse(path.read_text()).body:
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                continue
            nodes = ast.walk(stmt) if isinstance(stmt, (ast.If, ast.Try)) else [stmt]
            for node in nodes:
                if isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    for a in node.names:
                        sub = f"{node.module}.{a.name}"
                        deps.add(sub if sub in paths else node.module)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found = []
    for start in graph:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    found.append(path + [dep])
                elif dep in graph and dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
    return found


def test_the_engine_has_no_import_cycle() -> None:
    assert cycles(import_graph("sfu")) == []


# Inside the engine the layout is the architecture: each package may import only the packages
# listed here (every import counted: module-level, in functions, under TYPE_CHECKING), besides the
# shared leaves config, errors and heap, which import nothing of the engine. Only the facade
# (sfu/__init__.py, sfu/engine.py) sees every package; no package imports the facade.
SFU_PACKAGES: dict[str, set[str]] = {
    "sfu.rtp": set(),
    "sfu.transport": {"sfu.rtp"},
    "sfu.room": {"sfu.rtp", "sfu.transport"},
    "sfu.recording": {"sfu.rtp", "sfu.room"},  # taps the router's observer for forwarded packets
}
SFU_LEAVES = {"sfu.config", "sfu.errors", "sfu.heap"}
# C-level dependencies the Python graph cannot see (.pyx/.pxd cimports), each with its reason:
# the C rewriter writes straight into the transport's send batch (BatchSink) so a forwarded
# packet costs no Python call between rewrite and SRTP protect.
SFU_NATIVE_EXCEPTIONS = {"sfu.rtp._rewriter -> sfu.transport._fastio"}


def _sfu_part(module: str) -> str:
    """The package (or top-level module) of the engine that ``module`` belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _native_imports() -> dict[str, set[str]]:
    """module -> the ``sfu`` modules its .pyx/.pxd files cimport or import."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "sfu").rglob("*.p[yx][xd]")):
        name = _module_name(path)
        for line in path.read_text().splitlines():
            words = line.split()
            if (
                len(words) > 2
                and words[0] == "from"
                and words[1].startswith("sfu.")
                and words[2] in ("import", "cimport")
            ):
                graph.setdefault(name, set()).add(words[1])
    return graph


def test_engine_packages_import_only_what_their_readme_allows() -> None:
    graph = {m: {d for d in deps if d == "sfu" or d.startswith("sfu.")} for m, deps in import_graph("sfu").items()}
    native = _native_imports()
    found = []
    for m, deps in [*graph.items(), *native.items()]:
        part = _sfu_part(m)
        for d in deps:
            there = _sfu_part(d)
            if there == part or f"{m} -> {d}" in SFU_NATIVE_EXCEPTIONS:
                continue
            if part in SFU_LEAVES:
                found.append(f"{m} -> {d} (a shared leaf imports nothing of the engine)")
            elif part in SFU_PACKAGES and there not in SFU_PACKAGES[part] | SFU_LEAVES:
                found.append(f"{m} -> {d}")
    assert sorted(found) == []
    # every package is in the table, and has its README
    packages = {_module_name(p.parent) for p in (ROOT / "sfu").glob("*/__init__.py")}
    assert packages == set(SFU_PACKAGES)
    assert all((ROOT / p.replace(".", "/") / "README.md").is_file() for p in packages)


def test_dependencies_point_one_way() -> None:
    def imports(package: str, other: str) -> list[str]:
        return sorted(
            f"{m} -> {d}"
            for m, deps in import_graph(package).items()
            for d in deps
            if d == other or d.startswith(other + ".")
        )

    assert imports("sfu", "api") == [] and imports("sfu", "web") == []
    assert imports("api", "web") == []


def test_the_application_has_no_import_cycle() -> None:
    # Type-only imports are left out: api/keys.py names the type of every resource whose
    # module reads those keys (e.g. api.models <-> api.models_recsys was a real cycle).
    assert cycles(runtime_import_graph("api")) == []


def test_route_modules_only_declare_routes() -> None:
    """Resources are built and started in api/lifecycle.py, not in route modules."""
    wiring = ("def setup(", "cleanup_ctx", "on_startup", "on_shutdown", "on_cleanup")
    found = sorted(
        f"{path.name}: {word}"
        for path in (ROOT / "api" / "routes").glob("*.py")
        for word in wiring
        if word in path.read_text()
    )
    assert found == []


def test_no_module_is_over_600_lines() -> None:
    long = sorted(
        f"{path.relative_to(ROOT)}: {n}"
        for package in ("api", "sfu", "web")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > 600
    )
    assert long == []


# Services speak in domain errors (api.services.errors); only the edge knows HTTP. None is left.
HTTP_ERRORS_LEFT: set[str] = set()


def _http_error_imports(path: Path) -> list[str]:
    """What a module imports of HTTP errors: ``api.errors`` or aiohttp's ``HTTPException``s."""
    found = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "api.errors" or node.module == "aiohttp.web_exceptions":
                found.append(node.module)
            elif node.module.startswith("aiohttp"):
                found.extend(f"{node.module}.{a.name}" for a in node.names if a.name.startswith("HTTP"))
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name in ("api.errors", "aiohttp.web_exceptions"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("HTTP") and node.attr[4:5].isupper():
            found.append(f"web.{node.attr}")  # web.HTTPNotFound and friends
    return found


def test_services_raise_domain_errors_not_http_ones() -> None:
    offenders = {}
    for path in sorted((ROOT / "api" / "services").rglob("*.py")):
        name = _module_name(path)
        if name in HTTP_ERRORS_LEFT:
            continue
        if found := _http_error_imports(path):
            offenders[name] = found
    assert offenders == {}


def test_benchmarks_never_import_the_tests() -> None:
    """What the benchmarks share with the tests lives in ``benchmarks/`` (tests may import it)."""
    found = sorted(
        f"{m} -> {d}"
        for m, deps in import_graph("benchmarks").items()
        for d in deps
        if d == "tests" or d.startswith("tests.")
    )
    assert found == []


MONEY_WRITES = {
    "ledger": {"post", "record_charge", "record_refund", "record_release"},
    "provider": {"charge", "refund", "payout"},
}


def test_only_the_money_package_moves_money() -> None:
    """docs/money.md: one owner. Outside api/services/money nothing posts a journal or calls
    the payment provider; everyone else asks money.charges (charge, refund, release)."""
    found = []
    for package in ("api", "web"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "money" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.attr in MONEY_WRITES.get(node.func.value.id, set())
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.value.id}.{node.func.attr}")
    assert found == []
