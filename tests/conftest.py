"""Shared fixtures: store URLs for both backends, each test in its own database namespace.

PostgreSQL is a real server (STATECHART_TEST_POSTGRES_URL, which .ci/run sets). In CI an
unreachable server fails the PostgreSQL tests; on a developer machine without one they skip.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings

from statechart import VirtualClock

# Hypothesis profiles, chosen once for the whole run rather than per test. A loaded 2-core machine
# makes timing meaningless, so no profile has a deadline. CI is reproducible: derandomized (the same
# examples every run) and without the example database; on a developer machine examples vary from
# run to run so new cases keep being tried. HYPOTHESIS_PROFILE picks one explicitly.
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

POSTGRES_URL = os.environ.get("STATECHART_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except Exception as error:  # noqa: BLE001 - any failure means: not usable here
        return f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(error).__name__}: {str(error).strip()[:120]})"


_POSTGRES_PROBLEM = _postgres_reachable()


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    if _POSTGRES_PROBLEM:
        if os.environ.get("CI"):
            pytest.fail(_POSTGRES_PROBLEM + "; CI must run the PostgreSQL tests")
        pytest.skip(_POSTGRES_PROBLEM)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One URL per backend; every store test runs against both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at t=1000 for the store tests (a module that needs another start defines its own)."""
    return VirtualClock(1000.0)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()
