"""Decoding a picture is bounded in memory, also when several sessions decode at once.

Measured as the growth of a fresh process's peak resident memory, so that Pillow's
and numpy's buffers both count. The peak is the process's own (VmHWM): getrusage's
ru_maxrss keeps the parent's peak across fork and exec, and so would hide any growth
below what pytest itself once held.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads peak memory from /proc/self/status"
)
MB = 2**20
RAW_MB = 5000 * 8000 * 4 / MB  # the pixels of a 40 MP float picture: 153 MB

PROBE = """
import json, sys, threading
from classifier import images
def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
images.hand_back_large_buffers()  # as the app's server does
data = open(sys.argv[1], "rb").read()
min_side = int(sys.argv[3])
before = peak_kb()
results = []
def decode():
    results.append(images.decode_image(data, min_side=min_side, max_bytes=len(data)))
threads = [threading.Thread(target=decode) for _ in range(int(sys.argv[2]))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
grown = (peak_kb() - before) / 1024
picture = results[0].image
print(json.dumps({"grown_mb": grown, "size": picture.size, "left": picture.getpixel((10, 10)),
                  "right": picture.getpixel((picture.width - 10, 10))}))
"""


@pytest.fixture(scope="module")
def float_tiff(tmp_path_factory):
    """A 40 MP float TIFF, black on the left and 0.8 grey on the right: 300 KB on disk."""
    values = np.zeros((5000, 8000), np.float32)
    values[:, 4000:] = 0.8
    path = tmp_path_factory.mktemp("float") / "float.tif"
    Image.fromarray(values, "F").save(path, "TIFF", compression="tiff_adobe_deflate")
    assert path.stat().st_size < 1 * MB
    return path


def decode_in_a_fresh_process(path, threads: int, min_side: int = 256) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(threads), str(min_side)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_a_small_float_tiff_decodes_within_its_pixels_memory_and_looks_right(float_tiff):
    result = decode_in_a_fresh_process(float_tiff, 1)
    # Before: float64 copies of the whole picture took about 1.4 GB here.
    assert result["grown_mb"] < 1.5 * RAW_MB
    assert min(result["size"]) >= 256  # reduced, but never below what the crop needs
    assert result["left"] == [0, 0, 0] and result["right"] == [204, 204, 204]


def test_concurrent_heavy_decodes_take_turns_instead_of_adding_up(float_tiff):
    result = decode_in_a_fresh_process(float_tiff, 4)
    # Before: four at once grew the process by about 4.2 GB.
    assert result["grown_mb"] < 1.5 * RAW_MB


@pytest.fixture(scope="module")
def photo_pngs(tmp_path_factory):
    """A 40 MP picture as an ordinary opaque PNG, and as an RGBA PNG whose right half is
    half transparent: red on the left, blue on the right."""
    pixels = np.empty((5000, 8000, 4), np.uint8)
    pixels[:, :4000] = (200, 30, 30, 255)
    pixels[:, 4000:] = (30, 30, 200, 128)
    folder = tmp_path_factory.mktemp("png")
    Image.fromarray(pixels[..., :3]).save(folder / "opaque.png")
    Image.fromarray(pixels, "RGBA").save(folder / "transparent.png")
    return folder / "opaque.png", folder / "transparent.png"


@pytest.fixture(scope="module")
def ordinary_photo_mb(photo_pngs):
    """What decoding the opaque picture grows a process by: its pixels, about 153 MB."""
    return decode_in_a_fresh_process(photo_pngs[0], 1)["grown_mb"]


@pytest.mark.parametrize(
    ("min_side", "ratio"),
    [
        # Reduced for the model's crop. Before: Pillow reduced a premultiplied full copy, 2x.
        (256, 1.5),
        # Nothing reduced (as for any picture under twice min_side on its shorter side).
        # Before: the picture, a white one and two full-size conversions, about 4x.
        (5000, 3),
    ],
    ids=["reduced", "whole"],
)
def test_a_transparent_png_takes_about_the_memory_of_an_ordinary_photo(
    photo_pngs, ordinary_photo_mb, min_side, ratio
):
    result = decode_in_a_fresh_process(photo_pngs[1], 1, min_side)

    assert result["grown_mb"] <= ratio * ordinary_photo_mb
    assert (min(result["size"]) >= 5000) == (min_side == 5000)
    # The same picture as before: the transparent half is put on white.
    assert result["left"] == [200, 30, 30] and result["right"] == [142, 142, 227]
