"""The server's first-ever load of a built-in model: exported by a child process, so the
server process never imports TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SERVER_LIKE = """
import json, sys
from classifier import models
from classifier.predict import classify
loaded = models.load("efficientnet_lite0", in_child=True)
prediction = classify(open(sys.argv[1], "rb").read(), loaded)
print(json.dumps({
    "tensorflow": "tensorflow" in sys.modules or "keras" in sys.modules,
    "backend": loaded.engine.backend,
    "top1": prediction.top(1)[0].label,
    "cached": [p.name for p in models.cached_engine_path(loaded.name).parent.glob("*.tflite")],
}))
"""


def test_a_first_load_exports_in_a_child_and_never_imports_tensorflow(tmp_path, photo_files):
    environment = dict(os.environ, CLASSIFIER_CACHE_DIR=str(tmp_path / "engines"))

    done = subprocess.run(
        [sys.executable, "-c", SERVER_LIKE, str(photo_files["coffee"])],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=600,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] is False
    assert report["backend"] == "LiteRT"
    assert report["top1"] == "espresso"
    assert len(report["cached"]) == 1 and report["cached"][0].startswith("efficientnet_lite0-")


def test_a_failed_child_export_is_one_sentence(tmp_path, monkeypatch):
    from classifier import models
    from classifier.models import derived
    from classifier.runtime.child import ChildFailed

    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(tmp_path / "engines"))

    def refuse(*arguments):
        raise ChildFailed("The model could not be built (out of memory).")

    monkeypatch.setattr(derived, "run_convert", refuse)
    with pytest.raises(models.ModelError) as error:
        models.load("efficientnet_lite0", in_child=True)
    assert str(error.value) == (
        "EfficientNet-Lite0 could not be prepared on this server: "
        "The model could not be built (out of memory)."
    )
