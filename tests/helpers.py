"""What several test modules share: picture encoding and the classes a cat photo may get."""

from __future__ import annotations

import io

CAT_CLASSES = frozenset({"tiger cat", "tabby", "Egyptian cat"})


def encode(array, fmt: str = "PNG", **params) -> bytes:
    """Encode a numpy RGB array as image bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **params)
    return buffer.getvalue()
