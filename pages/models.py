"""Models: the model card of every network in the zoo, with latency measured on this server."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from classifier import engine, zoo
from pages import common

RUNS = 20


def measure_latency(name: str) -> tuple[str, float] | None:
    """Time the model's engine on one image; return (model used, median ms)."""
    loaded = common.load_model(name)
    if loaded is None:
        return None
    if loaded.notice:
        st.warning(loaded.notice)
    size = loaded.spec.input_size
    batch = loaded.spec.preprocess(
        np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    )
    loaded.engine.run(batch)  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        loaded.engine.run(batch)
        times.append((time.perf_counter() - started) * 1000)
    return loaded.name, float(np.median(times))


st.title("Models")
st.caption(
    "Every network classifies into the same 1,000 ImageNet classes. Models whose weights "
    "cannot be had on this server fall back to EfficientNet-Lite0, which ships with the app."
)
latencies = st.session_state.setdefault("latencies", {})
# A "Measure latency" click is handled before the table is drawn, so the table shows it.
if pending := st.session_state.pop("measure", None):
    measured = measure_latency(pending)
    if measured is not None:
        used, ms = measured
        latencies[used] = ms
        st.success(
            f"{zoo.get_spec(used).title}: {ms:.1f} ms per image "
            f"(median of {RUNS} runs on this server)."
        )

rows = []
for spec in zoo.MODELS.values():
    status = zoo.weights_status(spec.name)
    rows.append(
        {
            "model": spec.title,
            "name": spec.name,
            "input": f"{spec.input_size}×{spec.input_size}",
            "parameters": spec.parameters,
            "weights": "available" if status.available else "not available here",
            "engine cached": engine.cached_engine_path(spec.name) is not None,
            "latency (ms)": latencies.get(spec.name),
        }
    )
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    column_config={
        "parameters": st.column_config.NumberColumn("Parameters", format="localized"),
        "engine cached": st.column_config.CheckboxColumn("LiteRT file cached"),
        "latency (ms)": st.column_config.NumberColumn("Latency (ms)", format="%.1f"),
    },
)

for spec in zoo.MODELS.values():
    status = zoo.weights_status(spec.name)
    with st.expander(spec.title):
        st.text(f"Weights: {status.source}")
        if not status.available:
            st.warning(f"{spec.title} is not available here: {status.reason}.")
        st.button(
            "Measure latency",
            key=f"measure_{spec.name}",
            on_click=st.session_state.__setitem__,
            args=("measure", spec.name),
        )
