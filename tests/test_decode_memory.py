"""Decoding a picture is bounded in memory, also when several sessions decode at once.

Measured as the growth of a fresh process's peak resident memory, so that Pillow's
and numpy's buffers both count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

MB = 2**20
RAW_MB = 5000 * 8000 * 4 / MB  # the pixels of a 40 MP float picture: 153 MB

PROBE = """
import json, resource, sys, threading
from classifier import images
images.hand_back_large_buffers()  # as the app's server does
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = []
def decode():
    results.append(images.decode_image(data, min_side=256, max_bytes=len(data)))
threads = [threading.Thread(target=decode) for _ in range(int(sys.argv[2]))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
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


def decode_in_a_fresh_process(path, threads: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(threads)],
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
