"""What several test modules share: picture encoding and the classes a cat photo may get."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifier.history import NewRecord
    from classifier.labels import TopClass

CAT_CLASSES = frozenset({"tiger cat", "tabby cat", "Egyptian Mau"})  # 282, 281, 285


APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def in_sight(at, kind: str) -> list:
    """Return the page's elements of a kind ("vega_lite_chart", "table", "image", ...),
    leaving out the stand-in answer the Classify page draws out of sight while it waits
    for a photo (`ui.results.warm_up`)."""
    from ui.results import WARM_UP_KEY

    found = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if str(getattr(getattr(child, "proto", None), "id", "")).endswith(f"-{WARM_UP_KEY}"):
                continue
            if getattr(child, "type", None) == kind:
                found.append(child)
            walk(child)

    walk(at.main)
    return found


def app_test(timeout: float = 300):
    """Return the app under Streamlit's AppTest, opening on its first page (not run yet).

    The one way tests open the app; a test that needs fresh caches clears them first.
    """
    from streamlit.testing.v1 import AppTest  # Streamlit: only for the tests that run the app

    return AppTest.from_file(APP, default_timeout=timeout)


def encode(array, fmt: str = "PNG", **params) -> bytes:
    """Encode a numpy RGB array as image bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **params)
    return buffer.getvalue()


RECORD_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # make_record's created_at


def ranked(label: str, probability: float, index: int = 0) -> tuple[TopClass, ...]:
    """A top-k whose top-1 is `label`, followed by a weaker runner-up."""
    from classifier.labels import TopClass

    return (TopClass(label, index, probability), TopClass("runner-up", 999, probability / 2))


def make_record(**overrides: object) -> NewRecord:
    """A history NewRecord of a cat photo at RECORD_TIME; keyword arguments replace fields."""
    from classifier.history import NewRecord

    values: dict[str, object] = {
        "file_name": "cat.jpg",
        "sha256": hashlib.sha256(b"cat.jpg").hexdigest(),
        "width": 640,
        "height": 480,
        "image_format": "JPEG",
        "model": "mobilenet_v2",
        "top_k": ranked("tabby cat", 0.8, 281),
        "inference_ms": 12.5,
        "created_at": RECORD_TIME,
    }
    values.update(overrides)
    return NewRecord(**values)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m classifier ARGS` from the project folder, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "classifier", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
        check=False,
    )


# --- The predictions the history tests share ------------------------------------------
# test_history_store.py, test_history_tables_and_migrations.py, test_history_connecting.py


if TYPE_CHECKING:
    from classifier.history import HistoryStore, Record

HOSTILE_NAME = "'); DROP TABLE predictions;-- <b>x</b> [y](javascript:z).png"
T0 = RECORD_TIME  # make_record's created_at
PLUS_TWO = timezone(timedelta(hours=2))


# name: (model, top-1 label, probability, created_at, feedback, corrected label)
SEED = {
    "a.jpg": ("mobilenet_v2", "tabby cat", 0.95, T0, "correct", None),
    "b.jpg": ("mobilenet_v2", "tiger cat", 0.55, T0 + timedelta(days=1), "wrong", "Egyptian cat"),
    "c.jpg": ("mobilenet_v2", "golden retriever", 0.35, T0 + timedelta(days=2), None, None),
    # 01:30 at UTC+2 is 23:30 UTC the day before: it belongs to March 3.
    "d.jpg": (
        "efficientnet_lite0",
        "tabby cat",
        0.85,
        datetime(2024, 3, 4, 1, 30, tzinfo=PLUS_TWO),
        "wrong",
        "lynx",
    ),
    "e.jpg": ("efficientnet_lite0", "espresso", 0.05, T0 + timedelta(days=4), None, None),
    "f.jpg": ("efficientnet_lite0", "sports car", 1.0, T0 + timedelta(days=4, hours=1), None, None),
}


def seed(store: HistoryStore) -> dict[str, int]:
    """Add the SEED predictions with their feedback; return their ids by file name."""
    ids = {}
    for name, (model, label, probability, created_at, feedback, corrected) in SEED.items():
        record = make_record(
            file_name=name,
            model=model,
            top_k=ranked(label, probability),
            created_at=created_at,
            thumbnail=name.encode(),
        )
        ids[name] = store.add(record)
        if feedback:
            assert store.set_feedback(ids[name], feedback, corrected)
    return ids


def names(records: list[Record]) -> list[str]:
    return [record.file_name for record in records]
