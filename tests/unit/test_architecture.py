"""The layering rules of DESIGN.md §8, checked on the source: only the transport imports
grpc and the generated code, only storage imports sqlalchemy, only ops imports
prometheus_client, and the core imports the standard library and cryptography."""

from __future__ import annotations

import ast
import sys
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
    # Documents people read: templates, catalogs and formats, PDF and DOCX.
    "jinja2": ("gateway/ops/",),
    "markupsafe": ("gateway/ops/",),
    "babel": ("gateway/ops/",),
    "weasyprint": ("gateway/ops/",),
    "docx": ("gateway/ops/",),
}
# The generated code is a first-party module but belongs to the transport edge.
PB = "gateway.pb"
PB_ALLOWED = ("gateway/transport/", "gateway/codec.py", "gateway/pb/")
CORE_FIRST_PARTY = ("gateway.core", "gateway.errors")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
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
