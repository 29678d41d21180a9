"""Models: the built-in networks with latency measured on this server, and your own models."""

import pandas as pd
import streamlit as st

from classifier import models
from ui import account, entry, evaluate_view, own_models, resources

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

account.account_sidebar(account.visitor())
st.title("Models")
st.header("Built in")
st.caption(
    "Every built-in network classifies into the same 1,000 ImageNet classes. Models whose "
    "weights cannot be had on this server fall back to EfficientNet-Lite0, which ships with "
    "the app."
)
statuses = {name: models.weights_status(name) for name in models.MODELS}
measurable = [name for name in models.MODELS if statuses[name].available]
# Kept for the server process and keyed by the model that ran: a model that falls back is
# timed as the one that answers.
latencies = resources.latencies()
# A "Measure" click is handled before the table is drawn, so the table shows it.
measured_now: list[models.Latency] = []
for pending in st.session_state.pop("measure", []):
    if loaded := resources.load_model(pending):
        with st.spinner(f"Measuring {loaded.spec.title}…"):
            latencies[loaded.name] = models.measure_latency(loaded)
        measured_now.append(latencies[loaded.name])

evaluated = evaluate_view.latest_texts()  # the newest evaluation of each model, if any


def latency_text(name: str) -> str:
    """Say a model's measured latency, or which model answers for it."""
    if not statuses[name].available:
        return f"answered by {models.title_of(models.FALLBACK_MODEL)}"
    return f"{latencies[name].median_ms:.1f} ms" if name in latencies else "not measured"


st.dataframe(
    pd.DataFrame(
        {
            "model": [spec.title for spec in models.MODELS.values()],
            "latency": [latency_text(name) for name in models.MODELS],  # in reach on a phone
            "name": list(models.MODELS),
            "input": [f"{spec.input_size}×{spec.input_size}" for spec in models.MODELS.values()],
            "parameters": [spec.parameters for spec in models.MODELS.values()],
            "weights": [
                "available" if statuses[name].available else "not available here"
                for name in models.MODELS
            ],
            "engine cached": [
                "yes" if models.cached_engine_path(name) is not None else "–"
                for name in models.MODELS
            ],
            "evaluated": [evaluated.get(name, "–") for name in models.MODELS],
        }
    ),
    hide_index=True,
    column_config={
        "model": st.column_config.TextColumn("Model"),
        "latency": st.column_config.TextColumn(
            "Latency", help="Median time for one picture on this server, after a warm-up"
        ),
        "name": st.column_config.TextColumn("Name"),
        "input": st.column_config.TextColumn("Input"),
        "parameters": st.column_config.NumberColumn("Parameters", format="localized"),
        "weights": st.column_config.TextColumn("ImageNet weights"),
        "engine cached": st.column_config.TextColumn("LiteRT file cached"),
        "evaluated": st.column_config.TextColumn(
            "Evaluated", help="Its newest evaluation's accuracy (Evaluate page)"
        ),
    },
)

with st.container(horizontal=True, vertical_alignment="center"):
    st.button(
        "Measure all",
        key="measure_all",
        icon=":material/speed:",
        help="Time every model whose weights are here, on this server",
        on_click=st.session_state.__setitem__,
        args=("measure", measurable),
    )
    for name in measurable:
        st.button(
            f"Measure {models.title_of(name)}",
            key=f"measure_{name}",
            on_click=st.session_state.__setitem__,
            args=("measure", [name]),
        )

for result in measured_now:
    st.success(
        f"{result.model_title}: {result.median_ms:.1f} ms per image on {result.backend}, "
        f"median of {result.runs} runs on this server."
    )

for name, spec in models.MODELS.items():
    with st.expander(spec.title):
        st.text(f"Weights: {spec.weights_origin}")
        if not (status := statuses[name]).available:
            st.warning(
                f"{spec.title} is not available here: {status.reason}. "
                f"{models.title_of(models.FALLBACK_MODEL)} answers in its place."
            )

own_models.your_models(evaluated)
own_models.add_a_model()
