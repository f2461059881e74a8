"""Shared test setup: the project root on sys.path, and no real secrets leaking into tests."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never read the developer's real Truto settings from the environment.
for _name in list(os.environ):
    if _name.startswith("TRUTO_"):
        del os.environ[_name]

import pytest  # noqa: E402

from lib.truto.emulator import Emulator  # noqa: E402


@pytest.fixture
def emulator():
    """Start emulators on free loopback ports: ``emulator(dataset, **options)``; all stopped after the test."""
    started = []

    def start(data, **options):
        from tests.factories import TOKEN

        options.setdefault("token", TOKEN)
        emu = Emulator(data, **options).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


# --------------------------------------------------------------- store backends
# The store tests run on SQLite (a temporary file) and on PostgreSQL when TEST_POSTGRES_URL is set
# (e.g. postgresql://dash:dash@127.0.0.1:5432/dash_test). Without it the PostgreSQL cases are skipped
# with a message, except under CI=true, where a missing URL fails them. Each PostgreSQL case works in
# a schema of its own, dropped afterwards.

POSTGRES_URL_ENV = "TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    """TEST_POSTGRES_URL, or skip (fail under CI=true) when it is not set."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{POSTGRES_URL_ENV} is not set: under CI=true the store tests must run against PostgreSQL "
            "(.ci/run starts Debian's postgresql and exports it)"
        )
    pytest.skip(
        f"PostgreSQL store tests skipped: set {POSTGRES_URL_ENV}=postgresql://user:password@host:5432/db"
    )
    return None


@pytest.fixture
def postgres_schema_url():
    """``make()`` -> a URL whose connections use a fresh PostgreSQL schema (all dropped after the test)."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from lib.store import normalize_url

    base = make_url(normalize_url(postgres_base_url()))
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    created = []

    def make() -> str:
        schema = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        created.append(schema)
        return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    yield make
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for schema in created:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A URL for an empty database: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_schema_url")()


@pytest.fixture
def store(store_url):
    """An upgraded :class:`lib.store.Store` on each backend, closed after the test."""
    from lib.store import Store

    s = Store(store_url)
    yield s
    s.close()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Browser tests run one after another on one worker when the suite runs in parallel (pytest-xdist's
    ``--dist loadgroup``): each starts a Streamlit server and a Chromium of its own, and two of those at
    once on a small CI machine make page loads slow enough to time out. The other tests spread over the
    remaining workers.

    xdist 3.8 groups a test by the ``@group`` suffix its worker adds to ``item._nodeid``; pytest 9 keeps
    the node id in ``item._id``, so that suffix never reached the scheduler and two browser tests ran
    at once on two workers (two servers, two Chromiums). The suffix is added here, on the id pytest 9
    reads (tests/test_suite_grouping.py pins the grouping).
    """
    from _pytest.nodeid import coerce_node_id

    grouped = bool(config.getvalue("loadgroup")) if hasattr(config.option, "loadgroup") else False
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.xdist_group("browser"))
            if grouped and "@" not in item.nodeid and hasattr(item, "_id"):
                item._id = coerce_node_id(f"{item.nodeid}@browser")
