"""What every page shares: the settings sidebar, cached models and predictions, the store."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, replace

import streamlit as st

from classifier import engine, history, images, zoo
from classifier.config import get_settings
from classifier.predict import Prediction, classify

PREVIEW_SIDE = 640  # the picture kept with a cached prediction, for display and thumbnails


@dataclass(frozen=True)
class Settings:
    """The sidebar's choices."""

    model: str
    top_k: int
    threshold: float
    save: bool
    save_thumbnails: bool


def _remember(key: str, default) -> None:
    """Keep a widget's value when the person visits another page and comes back.

    Streamlit forgets a widget's state on a page that does not draw it, so the
    value lives under a second key and is copied back before the widget is drawn.
    """
    kept = f"kept_{key}"
    st.session_state.setdefault(kept, default)
    st.session_state[key] = st.session_state[kept]


def _keep(key: str) -> None:
    st.session_state[f"kept_{key}"] = st.session_state[key]


def _kept(key: str) -> dict:
    """Return the widget arguments that give a widget its key and keep its value."""
    return {"key": key, "on_change": _keep, "args": (key,)}


def model_title(name: str) -> str:
    """Return a model's title, marked when this server would answer with the fallback."""
    title = zoo.title_of(name)
    return title if zoo.weights_status(name).available else f"{title} (not available here)"


def settings_sidebar() -> Settings:
    """Draw the classifier settings in the sidebar and return them."""
    defaults = {
        "model": get_settings().default_model,
        "top_k": 5,
        "threshold": 0.25,
        "save": True,
        "save_thumbnails": True,
    }
    for key, default in defaults.items():
        _remember(key, default)
    with st.sidebar:
        st.header("Settings")
        st.selectbox(
            "Model",
            list(zoo.MODELS),
            format_func=model_title,
            **_kept("model"),
            help="The ImageNet network that classifies your photos.",
        )
        st.slider("Classes to show", 1, 10, **_kept("top_k"))
        st.slider(
            "Confidence threshold",
            0.0,
            1.0,
            step=0.05,
            format="percent",
            **_kept("threshold"),
            help="Below this, the page says the model is unsure.",
        )
        st.toggle(
            "Save to history",
            **_kept("save"),
            help="Keep each prediction on the History page.",
        )
        st.toggle(
            "Save thumbnails",
            **_kept("save_thumbnails"),
            disabled=not st.session_state["save"],
            help="Off: history keeps the labels but no picture.",
        )
    return Settings(**{key: st.session_state[key] for key in defaults})


@st.cache_resource(show_spinner=False, max_entries=len(zoo.MODELS))
def _load_model(name: str) -> engine.LoadedModel:
    return engine.load_model(name)


_loaded: set[str] = set()  # names this server process has loaded


def load_model(name: str) -> engine.LoadedModel | None:
    """Return the model's engine, loaded once per server; on failure show why and return None."""
    try:
        if name in _loaded:  # a spinner costs ~20 ms a rerun: only the first load gets one
            return _load_model(name)
        with st.spinner(f"Loading {zoo.get_spec(name).title}…"):
            loaded = _load_model(name)
        _loaded.add(name)
        return loaded
    except zoo.ModelError as exc:
        st.error(str(exc))
        return None


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def predict(content_digest: str, model_name: str, _data: bytes) -> Prediction:
    """Classify bytes once per (content, model); reruns and slider moves reuse the answer.

    The bytes are not hashed by Streamlit (leading underscore): their sha256 is the key.
    """
    prediction = classify(_data, _load_model(model_name), top_k=10)
    preview = prediction.image.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return replace(prediction, image=preview)


def share_column(title: str):
    """Return a table column that shows a 0-1 share as a bar and a percentage."""
    return st.column_config.ProgressColumn(title, format="percent", min_value=0.0, max_value=1.0)


PICTURE_COLUMN = st.column_config.ImageColumn("Picture", width="small")


@st.cache_data(show_spinner=False, max_entries=256)
def small_thumbnail_uri(content_digest: str, _prediction: Prediction) -> str | None:
    """Return the results table's thumbnail of a classified picture, made once per picture."""
    return thumbnail_uri(images.make_thumbnail(_prediction.image, 96))


def thumbnail_uri(data: bytes | None) -> str | None:
    """Return a data URI that `st.column_config.ImageColumn` can show."""
    if not data:
        return None
    kind = "webp" if data[8:12] == b"WEBP" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def database_url() -> str:
    """Return the history database URL: environment, then Streamlit secrets, then the default."""
    if os.environ.get("CLASSIFIER_DATABASE_URL"):
        return os.environ["CLASSIFIER_DATABASE_URL"]
    try:
        return st.secrets["connections"]["history"]["url"]
    except (KeyError, FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return get_settings().database_url


@st.cache_resource(show_spinner=False)
def _store(url: str) -> history.HistoryStore:
    return history.HistoryStore(url)


def store() -> history.HistoryStore:
    """Return the server's history store (one connection pool shared by every session)."""
    return _store(database_url())
