"""Gradio's image-classifier demo, the baseline of the browser benchmark (`benchmarks.browser`).

Built the way Gradio publishes it (the `image_classifier` demo and the "Image
Classification in TensorFlow and Keras" guide): a `gr.Interface` from a `gr.Image` to a
`gr.Label(num_top_classes=3)`, and a function that runs Keras' MobileNetV2 from
`keras.applications` with `model.predict` on one 224x224 picture after
`preprocess_input`. Three things differ, so that it runs offline and on this repository:

- MobileNetV2 is built with `weights=None` (random weights): the published demo downloads
  the ImageNet weights, and this machine has no network. The work per picture is the same;
  only the answers are meaningless.
- The 1,000 ImageNet class names are the ones the app ships (classifier/data), not a
  download.
- The input is `gr.Image(type="pil")`, resized to 224x224 in the function: the published
  `inp.reshape((-1, 224, 224, 3))` only works for a picture that already has that size.

`python benchmarks/gradio_demo.py PORT` serves it on 127.0.0.1:PORT with Gradio's
analytics and version check off; like the published demo, it does not warm the model up
(the benchmark's untimed first uploads do). It needs gradio (requirements-benchmarks.txt),
ideally in its own virtual environment that sees the app's TensorFlow through
`--system-site-packages`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before gradio is imported: no analytics, no version check, nothing from the Hub.
os.environ.update(
    {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
)

import gradio as gr
import keras
import numpy as np
from PIL import Image

LABELS = (
    (Path(__file__).resolve().parents[1] / "classifier" / "data" / "imagenet_names.txt")
    .read_text(encoding="utf-8")
    .splitlines()
)
SIZE = 224

model = keras.applications.MobileNetV2(weights=None)  # offline: random weights


def classify_image(image: Image.Image) -> dict[str, float]:
    """Return every class's probability for one picture, as the demo does."""
    pixels = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32)
    batch = keras.applications.mobilenet_v2.preprocess_input(pixels.reshape((-1, SIZE, SIZE, 3)))
    prediction = model.predict(batch).flatten()
    return {LABELS[i]: float(prediction[i]) for i in range(len(LABELS))}


demo = gr.Interface(
    fn=classify_image,
    inputs=gr.Image(type="pil"),
    outputs=gr.Label(num_top_classes=3),
)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7860
    demo.launch(server_name="127.0.0.1", server_port=port, share=False)
