"""A throw-away PostgreSQL schema: tests and benchmarks get a fresh database each,
without a server of their own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url


@contextmanager
def temporary_schema(base_url: str, *, prefix: str = "t_") -> Iterator[str]:
    """Create a schema, yield ``base_url`` with it as the search path, drop it after."""
    schema = prefix + secrets.token_hex(6)
    url = make_url(base_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
