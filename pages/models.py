"""Models: the model card of every network in the zoo, with latency measured on this server."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from classifier import engine, zoo
from pages import common

RUNS = 20


@dataclass(frozen=True)
class Latency:
    """One measurement: which model answered, on which runtime, how fast."""

    model_title: str
    backend: str
    median_ms: float


def measure_latency(name: str) -> Latency | None:
    """Time the engine a model name gets on this server, on one image."""
    loaded = common.load_model(name)
    if loaded is None:
        return None
    engine.wait_for_export(loaded)  # time the engine that will serve, not the interim one
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
    return Latency(loaded.spec.title, loaded.engine.backend, float(np.median(times)))


st.title("Models")
st.caption(
    "Every network classifies into the same 1,000 ImageNet classes. Models whose weights "
    "cannot be had on this server fall back to EfficientNet-Lite0, which ships with the app."
)
latencies: dict[str, Latency] = st.session_state.setdefault("latencies", {})
# A "Measure latency" click is handled before the table is drawn, so the table shows it.
if pending := st.session_state.pop("measure", None):
    with st.spinner(f"Measuring {zoo.get_spec(pending).title}…"):
        measured = measure_latency(pending)
    if measured is not None:
        latencies[pending] = measured

statuses = {name: zoo.weights_status(name) for name in zoo.MODELS}
st.dataframe(
    pd.DataFrame(
        {
            "model": [spec.title for spec in zoo.MODELS.values()],
            "name": list(zoo.MODELS),
            "input": [f"{spec.input_size}×{spec.input_size}" for spec in zoo.MODELS.values()],
            "parameters": [spec.parameters for spec in zoo.MODELS.values()],
            "weights": [
                "available" if statuses[name].available else "not available here"
                for name in zoo.MODELS
            ],
            "engine cached": [engine.cached_engine_path(name) is not None for name in zoo.MODELS],
            "latency": [
                f"{latencies[name].median_ms:.1f} ms" if name in latencies else "not measured"
                for name in zoo.MODELS
            ],
        }
    ),
    hide_index=True,
    column_config={
        "model": st.column_config.TextColumn("Model"),
        "name": st.column_config.TextColumn("Name"),
        "input": st.column_config.TextColumn("Input"),
        "parameters": st.column_config.NumberColumn("Parameters", format="localized"),
        "weights": st.column_config.TextColumn("ImageNet weights"),
        "engine cached": st.column_config.CheckboxColumn("LiteRT file cached"),
        "latency": st.column_config.TextColumn("Latency"),
    },
)

for name, spec in zoo.MODELS.items():
    status = statuses[name]
    with st.expander(spec.title, expanded=name in latencies):
        st.text(f"Weights: {status.source}")
        if not status.available:
            st.warning(f"{spec.title} is not available here: {status.reason}.")
        st.button(
            "Measure latency",
            key=f"measure_{name}",
            on_click=st.session_state.__setitem__,
            args=("measure", name),
        )
        if name in latencies:
            result = latencies[name]
            answered_by = "" if result.model_title == spec.title else f" (by {result.model_title})"
            st.success(
                f"{result.median_ms:.1f} ms per image on {result.backend}{answered_by}, "
                f"median of {RUNS} runs on this server."
            )
