"""The benchmark harness runs end to end in its quick mode and reports every row.

Timings are not asserted: they depend on the machine. BENCHMARKS.md holds a full run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MODELS = ("mobilenet_v2", "efficientnet_lite0")
INFERENCE = (
    "app engine (LiteRTEngine)",
    "raw LiteRT Interpreter",
    "Keras model.predict",
    "tf.function (KerasEngine)",
)
INPUTS = ("12 MP JPEG", "1 MP PNG", "small JPEG")
END_TO_END = ("app classify()", "naive (Pillow full decode + resize + model.predict)")
EXPECTED_ROWS = {
    *(("Inference, 1 image", f"{model} · {way}") for model in MODELS for way in INFERENCE),
    *(("End to end, bytes → top-k", f"{name} · {way}") for name in INPUTS for way in END_TO_END),
    ("Batch", "classify_many(list of bytes)"),
    ("Cold start, to first prediction", "app, warm engine cache"),
    ("Cold start, to first prediction", "app, empty engine cache"),
    ("Cold start, to first prediction", "naive process (TensorFlow + Keras + predict)"),
    ("Memory, peak RSS", "app process, default model"),
    (
        "Command line, whole process",
        "python -m classifier predict photo.jpg (efficientnet_lite0, warm engine cache)",
    ),
    ("Command line, whole process", 'python -c "import tensorflow"'),
    ("Page", "classify page rerun, cached prediction"),
    ("Page", "history store list(limit=50) + count, label filter"),
    ("Page", "Review queue, whole history"),
    ("Page", "history page first render"),
    ("Page", "history page, Summary tab opened"),
    ("Memory, server", "peak RSS, 4 sessions uploading a 40 MP float TIFF at once"),
    ("Memory, server", "RSS after 20 uploads in one session"),
    ("Memory, server", "peak RSS, first-ever load of the default model + 10 uploads"),
    ("Memory, server", "RSS after 60 uploads in one session"),
    ("Memory, server: sessions that ended", "RSS once running (one visit came and went)"),
    ("Memory, server: sessions that ended", "RSS after a first Teach session (2 x 4 photos) ended"),
    (
        "Memory, server: sessions that ended",
        "RSS after 2 Classify sessions at once, a Teach session with 20 photos and a 15-photo "
        "batch job ended",
    ),
    *(
        ("Own model, 3 classes (MobileNetV2 0.35)", f"{kind} LiteRT · {way}")
        for kind in ("float32", "uint8-quantized")
        for way in ("app engine (load_model by name)", "raw LiteRT Interpreter")
    ),
    (
        "Own model, 3 classes (MobileNetV2 0.35)",
        "add a .keras file (check, convert to LiteRT in a child process, keep)",
    ),
    *(
        ("Teach, on EfficientNet-Lite0", name)
        for name in (
            "embed one photo, uncached (teach.embed: decode + crop + extractor + cache)",
            "the same photos · raw LiteRT script (Pillow draft decode + crop + bare Interpreter)",
            "decode + crop + scale alone (embed's work before the extractor)",
            "feature extractor · raw LiteRT Interpreter, ready input",
            "train 20 classes × 50 photos (teach.train: 5-fold cross-validation + final fit)",
            "final fit alone (teach._head() on the 1,000 vectors)",
            "efficientnet_lite0 itself · app engine (load_model, 1,000 classes)",
            "taught model · app engine (extractor + NumPy head, load_model by name)",
            "taught model · fused model_unquant.tflite of its download, raw LiteRT",
        )
    ),
    *(
        ("Where it looked (EfficientNet-Lite0)", name)
        for name in (
            "classification alone · app engine",
            "classification with the map (explain.explain, one LiteRT call + NumPy)",
            "Grad-CAM recipe · TensorFlow GradientTape on the Keras model",
        )
    ),
}
# Inference (one per model), 12 MP JPEG, cold start warm and empty, rerun, query, history page,
# server peak under concurrent uploads, server growth over uploads, an added model's
# engine (float and quantized), embedding a photo to teach, training 20 x 50, a map, and the
# server's memory once sessions of each kind have ended.
TARGETED_ROWS = 18


@pytest.mark.slow
def test_quick_benchmark_reports_every_row(tmp_path):
    results = tmp_path / "results.json"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,  # under pytest-timeout's 900 s, so the output is shown
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    rows = json.loads(results.read_text())
    assert {(row["group"], row["name"]) for row in rows} >= EXPECTED_ROWS
    for row in rows:
        stats = [row[key] for key in ("median", "q1", "q3", "min", "max")]
        assert all(math.isfinite(value) and value > 0 for value in stats), row
        assert row["min"] <= row["median"] <= row["max"], row
        if row["baseline"]:
            assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
    targeted = [row for row in rows if row["target"]]
    assert len(targeted) == TARGETED_ROWS
    assert all(isinstance(row["met"], bool) for row in targeted)

    table = finished.stdout
    assert "| group | measurement | median |" in table
    assert all(f"| {name} |" in table for _, name in EXPECTED_ROWS)
    assert f"Targets met: {sum(row['met'] for row in targeted)} of {TARGETED_ROWS}." in table
