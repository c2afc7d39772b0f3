"""Shared fixtures: an isolated yarnnn home per test, the shared corpus, a real PostgreSQL; and the
suite-wide clock shift (``YARNNN_TEST_CLOCK_SHIFT_DAYS=N`` or ``--clock-shift-days N``: every test,
and every Python process it starts, runs N days in the future; see ``tests/fakes/clock_shift.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import clock_shift

_SHIFTED_NOW = pytest.StashKey["object"]()
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("YARNNN_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"

_SCRUB = ("ANTHROPIC_API_KEY", "YARNNN_")

#: A shift asked for by the environment starts when this root conftest is imported: pytest imports the
#: conftests of the directories named on the command line (``pytest tests/api``) before any
#: ``pytest_configure``, and their module-level ``now()`` reads must see the same clock as the tests.
_EARLY_DAYS = clock_shift.requested_days(None)
_EARLY_SHIFT = (_EARLY_DAYS, clock_shift.start(_EARLY_DAYS)) if _EARLY_DAYS else None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-shift-days", type=float, default=None, metavar="N",
                     help=f"run the suite with the wall clock moved N days ahead (env {clock_shift.ENV_DAYS})")


def pytest_configure(config: pytest.Config) -> None:
    """Start the clock shift before collection, so module-level ``now()`` reads are shifted too."""
    days = clock_shift.requested_days(config.getoption("clock_shift_days"))
    if _EARLY_SHIFT is not None and days == _EARLY_DAYS:
        config.stash[_SHIFTED_NOW] = _EARLY_SHIFT
    else:
        clock_shift.stop()  # the --clock-shift-days option overrides the environment's shift
        if days:
            config.stash[_SHIFTED_NOW] = (days, clock_shift.start(days))


def pytest_unconfigure(config: pytest.Config) -> None:
    clock_shift.stop()


def _shift_note(config: pytest.Config) -> str | None:
    shift = config.stash.get(_SHIFTED_NOW, None)
    if shift is None:
        return None
    days, now = shift
    return f"clock shifted {days:+g} d: the suite started at {now:%Y-%m-%d %H:%M} UTC (ticking, every process)"


def pytest_report_header(config: pytest.Config) -> str | None:
    return _shift_note(config)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    note = _shift_note(config)
    if note:  # -q hides the header; a shifted run says so at the end too
        terminalreporter.write_line(note)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own YARNNN_HOME and no inherited yarnnn/Anthropic settings."""
    for name in list(os.environ):
        if name.startswith(_SCRUB):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "yarnnn_home"
    monkeypatch.setenv("YARNNN_HOME", str(home))
    yield home
    from control_plane import db

    db.dispose_all()


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.exists():
        pytest.fail(f"shared corpus not found at {CORPUS} (set YARNNN_SHARED_DIR)")
    return CORPUS


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    from resources.settings import load_settings

    return load_settings()


@pytest.fixture
def store(settings):  # type: ignore[no-untyped-def]
    from io_managers.delta_store import DeltaStore

    return DeltaStore(settings.resolved_warehouse_root)


@pytest.fixture
def resources(settings):  # type: ignore[no-untyped-def]
    from resources.registry import build_resources

    return build_resources(settings)


PG_ADMIN_URL = os.environ.get("YARNNN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def pg_admin(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) with psycopg2, the one driver."""
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _pg_available() -> str | None:
    try:
        pg_admin("SELECT 1")
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (dropped afterwards).

    Skips on a laptop without PostgreSQL; fails in CI (CI=true), where it must run.
    """
    problem = _pg_available()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({problem})")
    name = f"yarnnn_test_{uuid.uuid4().hex[:12]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        from control_plane import db

        db.dispose_all()
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
