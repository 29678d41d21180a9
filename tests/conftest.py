"""Shared fixtures. Every test runs offline, with empty caches of its own."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from PIL import Image

    from classifier import teach
    from classifier.history import HistoryStore

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
for _name in ("CLASSIFIER_SERVER", "CLASSIFIER_TOKEN"):  # a developer's own deployment
    os.environ.pop(_name, None)

ROOT = Path(__file__).resolve().parents[1]

from classifier import config  # noqa: E402  (after the environment above is set)
from tests.helpers import encode  # noqa: E402


class SettingsAwareMonkeyPatch(pytest.MonkeyPatch):
    """pytest's MonkeyPatch, except that changing a setting has the app read its settings
    anew (it reads them once per process), and undoing the changes does too."""

    def setenv(self, name: str, value: str, prepend: str | None = None) -> None:
        super().setenv(name, value, prepend)
        config.reset_settings()

    def delenv(self, name: str, raising: bool = True) -> None:
        super().delenv(name, raising)
        config.reset_settings()

    def undo(self) -> None:
        super().undo()
        config.reset_settings()


@pytest.fixture
def monkeypatch() -> Iterator[SettingsAwareMonkeyPatch]:
    """The `monkeypatch` every test gets: settings changed through it take effect at once."""
    patch = SettingsAwareMonkeyPatch()
    yield patch
    patch.undo()


@pytest.fixture(autouse=True)
def fresh_settings():
    """Read the settings anew for each test, after the previous test's changes were undone;
    each test's app is a new server, which has not seen sign-in configured yet."""
    config.reset_settings()
    if "ui.account" in sys.modules:
        sys.modules["ui.account"].forget_sign_in_seen()
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
    """Skip slow, browser and server tests in a plain `pytest` run, unless asked for by --all
    or -m."""
    if config.getoption("--all") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow, browser or server test; `python -m pytest --all` runs it")
    for item in items:
        if {"slow", "browser", "server"} & set(item.keywords):
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


@pytest.fixture
def open_store(database_url: str) -> Iterator[Callable[..., HistoryStore]]:
    """Open stores on the test database (any HistoryStore class); close them afterwards."""
    from classifier.history import HistoryStore

    stores: list[HistoryStore] = []

    def open_(store_class: type[HistoryStore] = HistoryStore) -> HistoryStore:
        store = store_class(database_url)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.dispose()


@pytest.fixture
def store(open_store: Callable[..., HistoryStore]) -> HistoryStore:
    """A store on the test database (SQLite, and PostgreSQL when it is configured)."""
    return open_store()


@pytest.fixture
def raw(database_url: str) -> Iterator[sa.Engine]:
    """An engine that bypasses the store, to arrange and inspect the database."""
    engine = sa.create_engine(with_psycopg(make_url(database_url)))
    yield engine
    engine.dispose()


def with_psycopg(url: sa.URL) -> sa.URL:
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


# --- Teach: made-up vectors and a folder of photos per class -----------------------------
# (tests/test_teach.py, test_teach_page.py and test_teach_cli.py)

EXAMPLES = ROOT / "assets" / "examples"
LITE0 = "efficientnet_lite0"


def made_up_examples(
    classes: int = 3, per_class: int = 12, dimensions: int = 64, seed: int = 0
) -> teach.Examples:
    """Vectors with class structure (a mean per class plus noise, non-negative like ReLU's)."""
    import numpy as np

    from classifier import teach

    rng = np.random.default_rng(seed)
    means = rng.uniform(0, 2, (classes, dimensions))
    vectors, labels = [], []
    for c in range(classes):
        vectors.append(np.maximum(means[c] + rng.normal(0, 0.6, (per_class, dimensions)), 0))
        labels += [f"class {c}"] * per_class
    n = classes * per_class
    return teach.Examples(
        base=LITE0,
        vectors=np.concatenate(vectors).astype(np.float32),
        labels=tuple(labels),
        names=tuple(f"photo{i}.jpg" for i in range(n)),
        digests=tuple(f"{i:064x}" for i in range(n)),
    )


def jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    """Return a picture as JPEG bytes."""
    import io

    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def variations(picture: Image.Image, count: int, seed: int) -> list[Image.Image]:
    """Crops, flips, small turns and colour shifts of a picture."""
    import numpy as np
    from PIL import Image, ImageEnhance, ImageOps

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        w, h = picture.size
        left, top = rng.uniform(0, 0.15) * w, rng.uniform(0, 0.15) * h
        right, bottom = w - rng.uniform(0, 0.15) * w, h - rng.uniform(0, 0.15) * h
        varied = picture.crop((int(left), int(top), int(right), int(bottom)))
        if rng.random() < 0.5:
            varied = ImageOps.mirror(varied)
        varied = varied.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR)
        varied = ImageEnhance.Color(varied).enhance(rng.uniform(0.6, 1.4))
        varied = ImageEnhance.Brightness(varied).enhance(rng.uniform(0.75, 1.25))
        out.append(varied)
    return out


def drawn(kind: str, seed: int) -> Image.Image:
    """A picture of stripes, dots or nothing, in random colours and spacing."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 256, 3))
    picture = Image.new("RGB", (320, 256), background)
    draw = ImageDraw.Draw(picture)
    step = int(rng.integers(16, 40))
    if kind == "Striped":
        for x in range(0, 640, step):
            draw.line([(x, 0), (x - 256, 256)], fill=ink, width=step // 3)
    elif kind == "Dotted":
        for x in range(step // 2, 320, step):
            for y in range(step // 2, 256, step):
                r = step // 5
                draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    noise = rng.normal(0, 6, (256, 320, 3))
    return Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))


TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 8, 6


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, dict[str, list[bytes]]]:
    """An ImageFolder (one folder per class) to teach from, and held-out photos per class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("image_folder")
    held_out: dict[str, list[bytes]] = {}
    classes: dict[str, list[Image.Image]] = {}
    for number, name in enumerate(("cat", "coffee", "rocket")):
        with Image.open(EXAMPLES / f"{name}.jpg") as photo:
            classes[name.capitalize()] = variations(
                photo.convert("RGB"), TRAIN_PER_CLASS + HELD_OUT_PER_CLASS, seed=number
            )
    for number, kind in enumerate(("Striped", "Dotted", "Plain")):
        count = TRAIN_PER_CLASS + HELD_OUT_PER_CLASS
        classes[kind] = [drawn(kind, seed=100 * number + i) for i in range(count)]
    for name, pictures in classes.items():
        folder = root / name
        folder.mkdir()
        for i, picture in enumerate(pictures[:TRAIN_PER_CLASS]):
            (folder / f"{i:02d}.jpg").write_bytes(jpeg(picture))
        held_out[name] = [jpeg(p) for p in pictures[TRAIN_PER_CLASS:]]
    (root / "Plain" / "notes.txt").write_text("not a photo")
    return root, held_out


# --- Added models: real model files, made once per run ----------------------------------
# (tests/test_upload.py, test_own_models.py and test_models_page.py)

import numpy as np  # noqa: E402

from classifier import images  # noqa: E402
from tests import model_fixtures as mf  # noqa: E402

PHOTOS = ("cat", "coffee", "rocket")  # the shipped examples, one per fixture class


def photo(name: str) -> bytes:
    return (EXAMPLES / f"{name}.jpg").read_bytes()


def crop(name: str) -> np.ndarray:
    picture = images.decode_image(photo(name)).image
    return images.fit_to_input(picture, mf.SIZE, 1.0)


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> dict[str, object]:
    """Every model file the slow tests use, made once per run."""
    folder = tmp_path_factory.mktemp("models")
    pictures = [crop(name) for name in PHOTOS]
    model = mf.build_teachable_machine_model(pictures)
    model.save(folder / "keras_model.h5")
    labels = mf.teachable_machine_labels()
    float_file = mf.float_tflite(model)
    quantized_file = mf.quantized_tflite(model, pictures)
    return {
        "model": model,
        "labels": labels,
        "keras_zip": mf.zip_of(
            {"keras_model.h5": (folder / "keras_model.h5").read_bytes(), "labels.txt": labels}
        ),
        "float_zip": mf.zip_of({"model_unquant.tflite": float_file, "labels.txt": labels}),
        "quantized_zip": mf.zip_of({"model.tflite": quantized_file, "labels.txt": labels}),
        "quantized": quantized_file,
        "lambda": mf.lambda_keras(folder / "lambda.keras").read_bytes(),
        "rescaling": mf.rescaling_keras(folder / "rescaling.keras").read_bytes(),
        "custom_layer": mf.custom_layer_h5(folder / "custom.h5").read_bytes(),
        "custom_op": mf.custom_op_tflite(),
    }
