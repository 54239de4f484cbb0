"""The layering rules of DESIGN.md §8, checked on the source: only the transport imports
grpc and the generated code, only storage imports sqlalchemy, only ops imports
prometheus_client, and the core imports the standard library and cryptography.

And the client's boundary: ``clients/`` imports no server code, and the packages the
client distribution ships (packaging/client/pyproject.toml) import nothing outside
themselves but the standard library and the distribution's declared dependencies.
``make lint`` runs this module.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"

# Third-party top-level packages the gateway may import, and where.
ALLOWED: dict[str, tuple[str, ...]] = {
    "grpc": ("gateway/transport/",),
    "grpc_health": ("gateway/transport/",),
    "grpc_reflection": ("gateway/transport/",),
    "google": ("gateway/transport/", "gateway/codec.py"),  # protobuf runtime
    "sqlalchemy": ("gateway/storage/",),
    "alembic": ("gateway/storage/",),
    "psycopg": ("gateway/storage/",),
    "prometheus_client": ("gateway/ops/",),
    "cryptography": ("gateway/core/", "gateway/transport/identity.py", "gateway/ops/"),
    # Documents people read: templates, catalogs and formats, PDF and DOCX; the public pages.
    "jinja2": ("gateway/ops/", "gateway/public/"),
    "markupsafe": ("gateway/ops/", "gateway/public/"),
    "babel": ("gateway/ops/",),
    # The public read-only HTTP service: an adapter beside the gRPC transport.
    "starlette": ("gateway/public/",),
    "uvicorn": ("gateway/public/",),
    "weasyprint": ("gateway/ops/",),
    "docx": ("gateway/ops/",),
}
# The generated code is a first-party module but belongs to the transport edge.
PB = "gateway.pb"
PB_ALLOWED = ("gateway/transport/", "gateway/codec.py", "gateway/pb/")
CORE_FIRST_PARTY = ("gateway.core", "gateway.errors")
# The public HTTP adapter (gateway/public/) reads through the use cases alone: never the
# storage, the gRPC transport or the generated code, and of operations only the
# domain-free catalogs and official names. Only the process assembly starts it.
PUBLIC = "gateway/public/"
PUBLIC_FORBIDDEN = ("gateway.storage", "gateway.transport", "gateway.pb", "gateway.ops")
PUBLIC_OPS_ALLOWED = ("gateway.ops.i18n", "gateway.ops.report_names")
PUBLIC_IMPORTERS = ("gateway/public/", "gateway/ops/app.py")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` may import, at any depth of its code: ``import a.b`` gives
    ``a.b``; ``from a import b`` gives ``a`` and ``a.b`` (``b`` may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the project imports absolutely)"
            assert node.module
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


SOURCES = sorted(p for p in GATEWAY.rglob("*.py") if "/pb/" not in p.as_posix())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layering(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    for name in _imports(path):
        top = name.split(".")[0]
        if name.startswith(PB):
            assert rel.startswith(PB_ALLOWED), f"{rel} imports generated code {name}"
        elif rel.startswith("gateway/core/"):
            assert (
                top in sys.stdlib_module_names
                or top == "cryptography"
                or name.startswith(CORE_FIRST_PARTY)
            ), f"the core module {rel} imports {name}"
        elif top in ALLOWED:
            assert rel.startswith(ALLOWED[top]), f"{rel} imports {name}"
        if rel.startswith(PUBLIC) and name.startswith(PUBLIC_FORBIDDEN):
            assert name.startswith(PUBLIC_OPS_ALLOWED), f"the public adapter {rel} imports {name}"
        if name == "gateway.public" or name.startswith("gateway.public."):
            assert rel.startswith(PUBLIC_IMPORTERS), f"{rel} imports the public adapter {name}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _first_party_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports (type-checking imports included: a
    cycle there is still a knot a newcomer has to untie)."""
    modules = {_module_name(p): p for p in SOURCES}
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_import_cycles() -> None:
    """No module of the gateway reaches itself through its imports (a package's
    ``__init__`` re-exporting its own modules is the one allowed shape)."""
    graph = _first_party_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # a package importing its own submodule
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                if not all(cycle[i + 1].startswith(cycle[i] + ".") for i in range(len(cycle) - 1)):
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# --- the client's boundary ---------------------------------------------------------------

CLIENTS = ROOT / "clients"
CLIENT_PROJECT = ROOT / "packaging" / "client" / "pyproject.toml"
# What clients/ must never import: the server's layers and the server-only libraries.
SERVER_ONLY = (
    "gateway.storage",
    "gateway.transport",
    "gateway.service",
    "gateway.ops",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "prometheus_client",
)
# Import names of the client distribution's dependencies (distribution -> import).
DEPENDENCY_IMPORTS = {
    "grpcio": "grpc",
    "grpcio-health-checking": "grpc_health",
    "protobuf": "google",
    "cryptography": "cryptography",
    "openpyxl": "openpyxl",
    "tqdm": "tqdm",
    "babel": "babel",
}


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _first_party_module(name: str) -> Path | None:
    """The file of a first-party module ``name``, or None (an attribute, not a module)."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _client_packages() -> list[str]:
    project = tomllib.loads(CLIENT_PROJECT.read_text(encoding="utf-8"))
    packages: list[str] = project["tool"]["setuptools"]["packages"]
    return packages


def _client_dependencies() -> set[str]:
    project = tomllib.loads(CLIENT_PROJECT.read_text(encoding="utf-8"))
    names = {
        re.split(r"[<>=!~;\[\s]", d, maxsplit=1)[0].lower()
        for d in project["project"]["dependencies"]
    }
    return names


CLIENT_SOURCES = sorted(CLIENTS.rglob("*.py"))


@pytest.mark.parametrize("path", CLIENT_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_clients_import_no_server_code(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    for name in _imports(path):
        for server in SERVER_ONLY:
            assert not _is_under(name, server), f"{rel} imports server code: {name}"


def test_the_client_distribution_imports_only_itself_and_its_dependencies() -> None:
    packages = _client_packages()
    assert "clients" in packages and "gateway.core" in packages
    declared = _client_dependencies()
    assert declared == set(DEPENDENCY_IMPORTS), "update DEPENDENCY_IMPORTS with the dependencies"
    allowed_third_party = {DEPENDENCY_IMPORTS[d] for d in declared}
    problems = []
    for package in packages:
        folder = ROOT.joinpath(*package.split("."))
        assert (folder / "__init__.py").is_file(), f"{package} is not a package"
        for path in sorted(folder.glob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for name in _imports(path):
                top = name.split(".")[0]
                if top in ("gateway", "clients"):
                    module = _first_party_module(name)
                    if module is None:
                        continue  # an attribute of an imported module
                    shipped = module.parent.relative_to(ROOT).as_posix().replace("/", ".")
                    if shipped not in packages:
                        problems.append(f"{rel} imports {name}, which the client does not ship")
                elif top not in sys.stdlib_module_names and top not in allowed_third_party:
                    problems.append(f"{rel} imports {name}, not a dependency of the client")
    assert not problems, "\n".join(problems)
