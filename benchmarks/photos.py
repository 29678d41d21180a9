"""Photo-like test pictures, generated from the example photos the app ships.

A sample photo scaled up is too smooth to be realistic: JPEG would squeeze a
12-megapixel one into a few hundred kilobytes and decode it unusually fast.
Sensor-like noise brings the file to the size of a phone photo (about 3 MB).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from classifier.config import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "assets" / "examples"
SOURCES = ("cat", "coffee", "rocket")
NOISE = 6.0  # standard deviation of the grey-level noise, in 0..255 units
JPEG_QUALITY = 90


def photo(source: str, size: tuple[int, int], seed: int, noise: float = NOISE) -> np.ndarray:
    """Return a (height, width, 3) uint8 photo: a sample cropped and scaled to `size`, with noise.

    Args:
        source: The name of an example photo, e.g. "cat".
        size: (width, height) in pixels.
        seed: Seeds the noise, so that each picture is different but reproducible.
        noise: The luminance noise; colour noise is half of it.
    """
    sample = sample_photo(source)
    pixels = np.asarray(ImageOps.fit(sample, size, Image.Resampling.BICUBIC), dtype=np.float32)
    rng = np.random.default_rng(seed)
    grey = rng.standard_normal((*pixels.shape[:2], 1), dtype=np.float32) * noise
    colour = rng.standard_normal(pixels.shape, dtype=np.float32) * (noise / 2)
    return np.clip(np.rint(pixels + grey + colour), 0, 255).astype(np.uint8)


def sample_photo(source: str) -> Image.Image:
    """Return one of the example photos in assets/examples as an RGB image."""
    with Image.open(EXAMPLES / f"{source}.jpg") as image:
        return image.convert("RGB")


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """Encode an RGB array as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    params = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, fmt, **params)
    return buffer.getvalue()


def end_to_end_inputs() -> dict[str, bytes]:
    """Return the three pictures of the end-to-end suite, by name."""
    return {
        "12 MP JPEG": encode(photo("cat", (4000, 3000), seed=0), "JPEG"),
        "1 MP PNG": encode(photo("coffee", (1155, 866), seed=1), "PNG"),
        "small JPEG": (EXAMPLES / "cat.jpg").read_bytes(),
    }


def batch_inputs(count: int) -> list[bytes]:
    """Return `count` different 2-megapixel JPEGs, as a person might upload at once."""
    return [
        encode(photo(SOURCES[i % len(SOURCES)], (1600, 1200), seed=100 + i), "JPEG")
        for i in range(count)
    ]


def cat_png() -> bytes:
    """Return the example photo of a cat as PNG bytes (451 x 300)."""
    return encode(np.asarray(sample_photo("cat")), "PNG")
