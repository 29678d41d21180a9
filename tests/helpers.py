"""What several test modules share: picture encoding and the classes a cat photo may get."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from classifier.history import NewRecord
    from classifier.labels import TopClass

CAT_CLASSES = frozenset({"tiger cat", "tabby cat", "Egyptian Mau"})  # 282, 281, 285


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
