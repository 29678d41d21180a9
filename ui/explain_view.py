"""The Classify page's "Where it looked": a heat map over the crop, for any class shown.

Off until the person switches it on (the first map of a network exports its map model
once, in a child process). Maps are cached per picture, model and class, so moving the
opacity slider or switching back to a class does not run the network again.
"""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import streamlit as st

from classifier import explain, images, models
from classifier.labels import TopClass
from classifier.predict import Prediction
from ui import pictures
from ui.columns import plain
from ui.uploads import Upload

log = logging.getLogger(__name__)
SHOWN_SIDE = 700  # px: the most the "Where it looked" picture is drawn at
METHOD_NOTES = {
    explain.CAM: "Class activation map: the network's last feature map, weighted by how much "
    "each feature counts for the class (for this network, the same as Grad-CAM).",
    explain.OCCLUSION: "Occlusion: each square of the picture was greyed out in turn; bright "
    "squares are those whose absence lowered the class most. This model's last layers do not "
    "allow a class activation map.",
}


@st.cache_data(show_spinner=False, max_entries=256)
def class_maps(
    content_digest: str,
    model_name: str,
    version: str,
    indices: tuple[int, ...],
    _pixels,
    _loaded: models.LoadedModel,
) -> tuple[str, dict[int, np.ndarray]]:
    """Return how the maps were made and the map of each class asked for (grid-sized)."""
    found = explain.explain(_loaded, _pixels)
    return found.method, {index: found.map(index) for index in indices}


def overlay_thumbnail(
    digest: str, prediction: Prediction, loaded: models.LoadedModel
) -> bytes | None:
    """Return "where it looked" for the top class as a history thumbnail, or None.

    Only where a class activation map is ready (a few milliseconds): occlusion would
    make every save wait up to a second, and a map model not exported yet is prepared in
    the background for the next saves.
    """
    try:
        spec = loaded.spec
        if explain.method_for(spec) != explain.CAM:
            return None
        if not explain.map_ready(spec):
            explain.prepare_in_background(spec.network)
            return None
        index, pixels = prediction.top1.index, prediction.model_input
        _, maps = class_maps(digest, prediction.model, spec.version, (index,), pixels, loaded)
        return images.make_thumbnail(explain.overlay(pixels, maps[index]))
    except Exception:  # the prediction is saved all the same, without its map
        log.exception("Making the history's map of %s failed", prediction.model)
        return None


@st.cache_data(show_spinner=False, max_entries=16)
def shown_square(content_digest: str, crop_fraction: float, least: int, _data: bytes) -> np.ndarray:
    """Return the square the network saw, decoded again from the person's file at up to
    SHOWN_SIDE pixels (the prediction's picture may be decoded at a reduced scale), so the
    map lies over a sharp picture, not the model's small input stretched; never smaller
    than that input (`least` pixels)."""
    image = images.decode_image(_data, min_side=math.ceil(SHOWN_SIDE / crop_fraction)).image
    side = min(SHOWN_SIDE, math.floor(min(image.size) * crop_fraction))
    return images.fit_to_input(image, max(least, side), crop_fraction)


def where_it_looked(
    upload: Upload,
    prediction: Prediction,
    top: tuple[TopClass, ...],
    loaded: models.LoadedModel,
) -> None:
    """Draw the "Where it looked" switch and, when on, the overlay of a picked class."""
    if not st.toggle(
        "Where it looked",
        key=f"where_{upload.key}",
        help="A heat map of the parts of the picture that counted most for a class.",
    ):
        return
    labels = {t.index: f"{t.label} · {t.probability:.0%}" for t in top}
    pick_col, opacity_col = st.columns([3, 2])
    index = pick_col.selectbox(
        "Class", list(labels), format_func=labels.__getitem__, key=f"where_class_{upload.key}"
    )
    opacity = opacity_col.slider(
        "Opacity", 0.0, 1.0, 0.6, step=0.05, key=f"where_opacity_{upload.key}"
    )
    try:
        spec = loaded.spec
        preparing = (
            contextlib.nullcontext()
            if explain.map_ready(spec)
            else st.spinner(f"Preparing {plain(spec.title)}'s maps (once per server, about 10 s)…")
        )
        with preparing:
            method, maps = class_maps(
                upload.digest,
                prediction.model,
                spec.version,
                tuple(labels),
                prediction.model_input,
                loaded,
            )
    except (explain.ExplainError, models.ModelError) as exc:
        st.warning(f"No map for this model: {plain(str(exc))}", icon=":material/visibility_off:")
        return
    except Exception:
        log.exception("Making a map for %s failed", prediction.model)
        st.warning("No map could be made; the server log has the details.")
        return
    shown_label = labels[index].rsplit(" · ", 1)[0]
    least = prediction.model_input.shape[0]
    square = shown_square(upload.digest, prediction.crop_fraction, least, upload.data)
    picture, legend = st.columns([3, 2], vertical_alignment="center")
    picture.image(
        pictures.inline(explain.overlay(square, maps[index], opacity)),
        caption=f"Where it looked for “{plain(shown_label)}” (the square the network saw)",
        width="stretch",
    )
    with legend:
        st.image(explain.legend(), caption="Counted least ← → counted most", width="stretch")
        st.caption(METHOD_NOTES[method])
