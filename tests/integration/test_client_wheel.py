"""The client distribution on its own: build the `alliance-client` wheel from
packaging/client, install it into a fresh virtual environment with nothing else (its
dependencies come from the package index), and run the CLI from there against a real
gateway started in this (the main) environment.

Needs the package index for the build backend and the client's dependencies; where
building is impossible (offline) deselect it with ``-m "not wheel"``. CI runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from gwtest import USCC, zhejiang
from gwtest import running_gateway as gateway_for
from openpyxl import Workbook
from test_client import write_profile

from clients import AllianceClient, __version__, load_profile
from clients.statements import BEIJING
from gateway.core.statements import PAYLOAD_TYPES, Listing, SanctionConfirmation
from gateway.protocol import CURRENT

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
# Distributions only the server needs: none may reach a platform's environment.
SERVER_ONLY = {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg-binary",
    "psycopg-c",
    "psycopg-pool",
    "prometheus-client",
    "alliance-gateway",
}
SERVER_PACKAGES = ("gateway.storage", "gateway.transport", "gateway.service", "gateway.ops")
_STEP_TIMEOUT_S = 600  # one build or install, from the index on a loaded machine


@dataclass(frozen=True)
class ClientEnv:
    root: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """A command of the venv (``alliance …``, ``python …``) in a clean environment."""
        exe = self.root / "bin" / args[0]
        return subprocess.run(
            [str(exe), *args[1:]],
            cwd=cwd,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that would lead a child to the main
    environment or the repository's sources."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "ALLIANCE_PROFILE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _step(args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=_STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    """The wheel, built from a copy of the sources (so the build leaves nothing in the
    work tree), installed into one fresh venv shared by this module's tests."""
    base = tmp_path_factory.mktemp("client-wheel")
    src = base / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for folder in ("packaging/client", "clients", "gateway"):
        shutil.copytree(ROOT / folder, src / folder, ignore=junk)
    wheels = base / "wheels"
    _step(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(wheels), str(src / "packaging" / "client")],
        base,
    )  # fmt: skip
    (wheel,) = wheels.glob("alliance_client-*.whl")
    venv = base / "venv"
    _step([sys.executable, "-m", "venv", str(venv)], base)
    env = ClientEnv(venv, wheel)
    _step([str(env.python), "-m", "pip", "install", "--quiet", str(wheel)], base)
    return env


def test_the_wheel_holds_the_client_and_no_server_code(client_env: ClientEnv) -> None:
    assert client_env.wheel.name == f"alliance_client-{__version__}-py3-none-any.whl"
    # The distribution's version follows the protocol: 1.4.x speaks alliance.v1/4.
    assert __version__.split(".")[:2] == [str(CURRENT.major), str(CURRENT.revision)]
    with zipfile.ZipFile(client_env.wheel) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    modules = {n.removesuffix(".py").replace("/", ".") for n in names if n.endswith(".py")}
    assert {"clients.cli", "clients.client", "gateway.codec", "gateway.protocol"} <= modules
    assert "gateway.core.statements" in modules and "gateway.pb.alliance.v1.exchange_pb2" in modules
    assert not [m for m in modules if m.startswith(SERVER_PACKAGES)]
    # The CLI's catalogs and the official names ship as data.
    assert "clients/locale/zh_CN/LC_MESSAGES/alliance.po" in names
    assert "gateway/core/names.toml" in names
    assert sorted(re.split(r"[<>=!~;\s]", r, maxsplit=1)[0].lower() for r in requires) == [
        "babel",  # the CLI's catalogs, dates and times
        "cryptography",
        "grpcio",
        "grpcio-health-checking",
        "openpyxl",  # submit-file reads Excel workbooks
        "protobuf",
        "tqdm",  # submit-file's progress display
    ]


def test_the_venv_has_only_the_client_and_its_dependencies(
    client_env: ClientEnv, tmp_path: Path
) -> None:
    listed = client_env.run("python", "-m", "pip", "list", "--format=json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    installed = {re.sub(r"[-_.]+", "-", d["name"]).lower() for d in json.loads(listed.stdout)}
    assert "alliance-client" in installed and "grpcio" in installed
    assert not installed & SERVER_ONLY, sorted(installed)

    # Every module of the distribution imports there, from there, and none of them
    # pulls in server code or a server-only library.
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import clients, gateway\n"
        "names = [m.name for p in (clients, gateway)\n"
        "         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')\n"
        "         if not m.name.endswith('.__main__')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'files': [clients.__file__, gateway.__file__],\n"
        "                  'imported': names, 'modules': sorted(sys.modules)}))\n"
    )
    done = client_env.run("python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert all(Path(f).is_relative_to(client_env.root) for f in seen["files"]), seen["files"]
    assert "clients.cli" in seen["imported"] and "gateway.core.notes" in seen["imported"]
    tops = {m.split(".")[0] for m in seen["modules"]}
    assert not tops & {"sqlalchemy", "alembic", "psycopg", "prometheus_client"}
    assert not [m for m in seen["modules"] if m.startswith(SERVER_PACKAGES)]


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[tuple[Path, Path]]:
    """A real gateway of this environment; the authority's and the platform's profiles."""
    alliance = zhejiang(tmp_path / "zj")
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    config = alliance.config(database_url)
    with gateway_for(config, register=(amr, shop)) as gw:
        address = f"127.0.0.1:{gw.port}"
        yield (
            write_profile(alliance, amr, address, config.log_origin),
            write_profile(alliance, shop, address, config.log_origin),
        )


def test_the_installed_cli_lists_checks_and_confirms_against_a_real_gateway(
    client_env: ClientEnv, site: tuple[Path, Path], tmp_path: Path
) -> None:
    authority, platform = (str(p) for p in site)

    def alliance(profile: str, *args: str) -> str:
        done = client_env.run("alliance", "--profile", profile, *args, cwd=tmp_path)
        assert done.returncode == 0, f"alliance {' '.join(args)}:\n{done.stderr}"
        assert "warning:" not in done.stderr, done.stderr  # same protocol on both sides
        return done.stdout

    out = client_env.run("alliance", "--version", cwd=tmp_path).stdout
    assert out.strip() == f"alliance {__version__} (alliance-client, speaks {CURRENT})"
    out = alliance(platform, "version")
    assert "gateway 127.0.0.1:" in out and f"serving, speaks {CURRENT}" in out

    out = alliance(
        authority, "list-seller", "--uscc", USCC[0], "--list", "blacklist",
        "--conduct", "fake-transactions", "--decision-ref", "ZJ-AMR-2026-0042",
        "--listed-at", "2026-10-01T09:30:00+08:00",
    )  # fmt: skip
    match = re.search(r"record id: ([0-9a-f]{64})", out)
    assert match, out
    listing_id = match.group(1)

    out = alliance(platform, "check", USCC[0], USCC[1], "--json")
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["listed"] and first["listings"][0]["listing_id"] == listing_id
    assert not second["listed"]

    out = alliance(
        platform, "confirm-sanction", listing_id, "--measure", "close-store",
        "--effective-at", "2026-10-02",
    )  # fmt: skip
    assert out.startswith("sanction confirmation stored")

    (state,) = json.loads(alliance(platform, "check", USCC[0], "--json"))["listings"]
    (applied,) = state["sanctions"]
    assert applied["measure"] == "close-store" and applied["action"] == "applied"
    assert applied["platform"] == "spiffe://zj.alliance.test/platform/shop-a"

    # The README's Python example, as written, in the platform's folder.
    done = client_env.run("python", "-c", _readme_python(), cwd=Path(platform).parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["confirmed", "reported"], done.stdout
    confirmed, reported = (line.split(": ")[1] for line in lines)
    with AllianceClient(load_profile(Path(platform))) as client:
        kinds = [client.get(record_id).envelope.payload_type for record_id in (confirmed, reported)]
    assert kinds == [PAYLOAD_TYPES[SanctionConfirmation], PAYLOAD_TYPES[Listing]]
    (state,) = json.loads(alliance(platform, "check", USCC[1], "--json"))["listings"]
    assert state["listing_id"] == reported

    # A list kept in Excel, with Chinese headers (openpyxl and tqdm come with the wheel).
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["统一社会信用代码", "列入名单", "失信行为", "决定文书号", "列入日期"])
    yesterday = (datetime.now(BEIJING) - timedelta(days=1)).date().isoformat()
    sheet.append([USCC[2], "黑名单", "刷单炒信", "浙市监〔2026〕9号", yesterday])
    book.save(tmp_path / "名单.xlsx")
    out = alliance(authority, "submit-file", "--lang", "en", str(tmp_path / "名单.xlsx"))
    assert out.startswith("1 row(s): 1 stored, 0 duplicate(s), 0 refused"), out


def _readme_python() -> str:
    """The Python block of the README's "For platforms" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## For platforms") :]
    section = section[: section.index("\n## ", 1)]
    return section[
        section.index("```python\n") + 10 : section.index("\n```", section.index("```python"))
    ]
