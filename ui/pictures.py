"""Pictures sent inside the page as data URIs, never as `/media/...` files.

Streamlit serves `st.image` files from `/media/<hash>` to whoever asks, without a cookie,
for as long as it keeps them (minutes after the tab closed). A person's photo, its
thumbnail or its heat map sent that way could be fetched by anyone holding the URL, so
every picture of theirs goes inside the page's own message instead.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 90


def inline(picture: Image.Image | np.ndarray | bytes) -> str:
    """Return a data URI that `st.image` shows as it is (no media file is made).

    Args:
        picture: A Pillow image, a uint8 array (height, width, 3), or an encoded WebP,
            JPEG or PNG file (a saved thumbnail).
    """
    if isinstance(picture, bytes):
        return f"data:{_kind(picture)};base64,{base64.b64encode(picture).decode('ascii')}"
    image = Image.fromarray(picture) if isinstance(picture, np.ndarray) else picture
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
    return f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _kind(data: bytes) -> str:
    if data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    return "image/jpeg"
