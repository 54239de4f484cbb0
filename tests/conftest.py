"""Fixtures shared by the integration tests (see gwtest.py for the helpers)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwtest import BACKENDS, pg_base_url, pg_schema_url

from clients import i18n


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that runs a command in-process (``gateway.ops.cli.main``) sets up the
    gateway's JSON logging on the root logger; put the root logger back afterwards, so
    the threads of later tests' gateways do not write into those tests' captured stderr."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _cli_language_restored() -> Iterator[None]:
    """``alliance --lang zh-CN`` run in-process sets the CLI's language for the process;
    later tests that call a command's handler directly expect the default, English."""
    yield
    i18n.use("en")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A real database per test: a SQLite file, and a fresh PostgreSQL schema when
    ALLIANCE_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    base = pg_base_url()
    assert base is not None
    with pg_schema_url(base) as url:
        yield url
