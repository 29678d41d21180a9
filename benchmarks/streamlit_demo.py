"""The usual Streamlit image classifier, a peer of the app in the browser benchmark's races
(`benchmarks.browser`): what the Streamlit gallery apps and tutorials do.

An uploader, Keras' MobileNetV2 from `keras.applications` held with `st.cache_resource`,
`model.predict` on the picture resized to 224x224, and the top five classes as
`st.bar_chart`. As in the Gradio demo (`benchmarks/gradio_demo.py`), MobileNetV2 has random
weights (`weights=None`: this machine cannot download them) and the class names are the
ones the app ships. Run with Streamlit's defaults:
`streamlit run benchmarks/streamlit_demo.py` from a folder without a `.streamlit/`.
"""

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

LABELS = (
    (Path(__file__).resolve().parents[1] / "classifier" / "data" / "imagenet_names.txt")
    .read_text(encoding="utf-8")
    .splitlines()
)


@st.cache_resource
def load_model():
    return keras.applications.MobileNetV2(weights=None)  # offline: random weights


st.title("Image classifier")
uploaded = st.file_uploader("Choose an image", type=["jpg", "jpeg", "png"])
if uploaded is not None:
    image = Image.open(uploaded).convert("RGB")
    st.image(image, width=300)
    pixels = np.asarray(image.resize((224, 224)), dtype=np.float32)
    batch = keras.applications.mobilenet_v2.preprocess_input(pixels[np.newaxis])
    probabilities = load_model().predict(batch)[0]
    top = np.argsort(probabilities)[::-1][:5]
    st.write(f"Prediction: {LABELS[top[0]]}")
    st.bar_chart(pd.DataFrame({"probability": probabilities[top]}, index=[LABELS[i] for i in top]))
