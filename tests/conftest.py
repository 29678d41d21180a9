"""Shared fixtures. Every test runs offline, with empty caches of its own."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

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


def encode(array, fmt: str = "PNG", **params) -> bytes:
    """Encode a numpy RGB array as image bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **params)
    return buffer.getvalue()


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


@pytest.fixture(scope="session")
def lite0():
    """The real EfficientNet-Lite0, loaded once per run (exports its engine on first use)."""
    from classifier.engine import wait_for_export
    from classifier.predict import get_model

    loaded = get_model("efficientnet_lite0")
    wait_for_export(loaded)  # tests below expect the LiteRT engine, not the interim Keras one
    return loaded
