"""Shared fixtures. Every test runs offline, with empty caches of its own."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# Set before anything imports Keras, which reads KERAS_HOME once at import.
_SANDBOX = Path(tempfile.mkdtemp(prefix="classifier-tests-"))
atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)
os.environ.update(
    {
        "CLASSIFIER_OFFLINE": "1",  # no test may touch the network
        "KERAS_HOME": str(_SANDBOX / "keras"),  # no Keras weights cached: like a fresh machine
        "CLASSIFIER_CACHE_DIR": str(_SANDBOX / "engines"),  # engines exported once per run
        "CLASSIFIER_DATA_DIR": str(_SANDBOX / "data"),
        # Never a developer's own history (or a secrets.toml pointing elsewhere).
        "CLASSIFIER_DATABASE_URL": f"sqlite:///{_SANDBOX / 'data' / 'history.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
)
os.environ.pop("CLASSIFIER_MODEL", None)

ROOT = Path(__file__).resolve().parents[1]

from classifier import config  # noqa: E402  (after the environment above is set)
from tests.helpers import encode  # noqa: E402


def _resetting(change):
    """Wrap a MonkeyPatch method so that changing a setting drops the cached settings."""

    def wrapper(self, name, *args, **kwargs):
        change(self, name, *args, **kwargs)
        if name.startswith(("CLASSIFIER_", "KERAS_")):
            config.reset_settings()

    return wrapper


# The app reads its settings once per process; a test that changes one through
# monkeypatch gets them read again, and every test starts from the environment above.
pytest.MonkeyPatch.setenv = _resetting(pytest.MonkeyPatch.setenv)
pytest.MonkeyPatch.delenv = _resetting(pytest.MonkeyPatch.delenv)


@pytest.fixture(autouse=True)
def fresh_settings():
    """Read the settings anew for each test, after the previous test's changes were undone."""
    config.reset_settings()
    yield
    config.reset_settings()


@pytest.fixture
def own_database(tmp_path, monkeypatch):
    """A database and data folder of the test's own, so added and taught models never leak."""
    from classifier.models import own

    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    yield
    own.close_stores()


@pytest.fixture(scope="session")
def chelsea_png() -> bytes:
    """scikit-image's photo of Chelsea the cat, as PNG bytes."""
    from skimage import data

    return encode(data.chelsea(), "PNG")


@pytest.fixture(scope="session")
def coffee_jpeg() -> bytes:
    """scikit-image's photo of a cup of coffee, as JPEG bytes."""
    from skimage import data

    return encode(data.coffee(), "JPEG", quality=92)


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory, chelsea_png, coffee_jpeg) -> dict[str, Path]:
    """The two photos written to disk, for the command line."""
    folder = tmp_path_factory.mktemp("photos")
    files = {"chelsea": folder / "chelsea.png", "coffee": folder / "coffee.jpg"}
    files["chelsea"].write_bytes(chelsea_png)
    files["coffee"].write_bytes(coffee_jpeg)
    return files


@pytest.fixture
def lite0_tflite(lite0) -> bytes:
    """The app's own EfficientNet-Lite0 LiteRT file: a real model, 224 x 224 input."""
    from classifier import models

    return models.cached_engine_path("efficientnet_lite0").read_bytes()


@pytest.fixture(scope="session")
def lite0():
    """The real EfficientNet-Lite0, loaded once per run (exports its engine on first use)."""
    from classifier.models import load as load_model

    loaded = load_model("efficientnet_lite0")
    loaded.engine.wait()  # tests below expect the LiteRT engine, not the interim Keras one
    return loaded


def pytest_addoption(parser):
    parser.addoption(
        "--all",
        action="store_true",
        help="also run the slow and the browser tests (the README's test command and CI do)",
    )


def pytest_collection_modifyitems(config, items):
    """Skip slow and browser tests in a plain `pytest` run, unless asked for by --all or -m."""
    if config.getoption("--all") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow or browser test; `python -m pytest --all` runs it")
    for item in items:
        if "slow" in item.keywords or "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def broken_secrets(tmp_path, monkeypatch) -> Path:
    """A secrets file that means to set the history URL but writes it as a plain key."""
    path = tmp_path / "secrets.toml"
    path.write_text('connections.history = "postgresql://x/db"\n')
    monkeypatch.setattr(config, "secrets_files", lambda cwd=None: (path,))
    monkeypatch.delenv("CLASSIFIER_DATABASE_URL")
    return path


# --- Database backends: every store test runs on SQLite and on the real PostgreSQL ------

POSTGRES_URL_VARIABLE = "CLASSIFIER_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server_url() -> sa.URL:
    """Return the PostgreSQL server to test against; skip without one, fail on CI."""
    on_ci = os.environ.get("CI", "").lower() == "true"
    raw_url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not raw_url:
        reason = (
            f"{POSTGRES_URL_VARIABLE} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
        if on_ci:
            pytest.fail(f"{reason}; CI=true requires the PostgreSQL tests.")
        pytest.skip(reason)
    url = with_psycopg(make_url(raw_url))
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        reason = f"PostgreSQL at {POSTGRES_URL_VARIABLE} is unreachable: {error.orig}"
        if on_ci:
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return make_url(raw_url)


@pytest.fixture(scope="session")
def postgres_admin(postgres_server_url: sa.URL) -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL server, to create and drop the per-test schemas."""
    engine = sa.create_engine(with_psycopg(postgres_server_url))
    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    server_url: sa.URL = request.getfixturevalue("postgres_server_url")
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    schema = f"history_test_{uuid.uuid4().hex}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        # The URL keeps the scheme it was given (usually plain postgresql://).
        url = server_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def with_psycopg(url: sa.URL) -> sa.URL:
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url
