"""The Models page's own-model sections: the models people added, and adding one.

Adding shows what was found in the file (format, classes, input), lets the person
name it, check the preprocessing and crop and try a picture before anything is kept.
Callbacks take names only.
"""

from __future__ import annotations

import logging
from pathlib import PurePath

import pandas as pd
import streamlit as st

from classifier import charts, history, images, models
from classifier.config import get_settings
from classifier.predict import classify
from ui import account, resources, results, teach_view
from ui.columns import plain

log = logging.getLogger(__name__)
SHOWN_CLASSES = 20
# The names Teachable Machine gives its exports and the files in them: they name no model.
EXPORT_NAMES = frozenset(
    {"converted_keras", "converted_tflite", "converted_tflite_quantized", "converted_edgetpu"}
    | {"keras_model", "model_unquant", "model"}
)
FORMATS_HELP = (
    "A Teachable Machine export (the .zip from “Export Model”: Keras, or LiteRT floating "
    "point or quantized), a Keras file (.keras or .h5), a LiteRT file (.tflite) or an ONNX "
    "file (.onnx, e.g. from PyTorch's torch.onnx.export); a file of your own needs its "
    "labels file, beside it or zipped with it."
)


def your_models(evaluated: dict[str, str] | None = None) -> None:
    """List the added models, each with its classes and a Remove button that asks first.

    `evaluated`: each model's newest evaluation in words, by name.
    """
    evaluated = evaluated or {}
    st.header("Your models")
    try:
        scope = resources.model_scope()
        kept = models.all_models(scope) if scope is not None else []
    except Exception:
        log.exception("Listing the added models failed")
        st.error("The added models cannot be listed: the database cannot be reached.")
        return
    # Both are Markdown: a model's name in them was made plain when they were written.
    if notice := st.session_state.pop("own_models_notice", None):
        st.success(notice, icon=":material/check_circle:")
    if error := st.session_state.pop("own_models_error", None):
        st.error(error)
    if added := st.session_state.pop("own_models_added", None):
        st.success(
            f"Added {plain(added)}. It is now the model picked on the Classify page.",
            icon=":material/check_circle:",
        )
        st.page_link(
            "pages/classify.py", label="Classify a photo with it", icon=":material/image_search:"
        )
    person = account.visitor()
    if person.admin and person.mode == "private":
        st.caption(":material/shield_person: As an admin you see everyone's models here.")
    if not kept:
        st.caption(
            "None yet. Add a Teachable Machine export or your own Keras, LiteRT or ONNX model "
            "(.onnx, e.g. from PyTorch's torch.onnx.export) with its labels file, alone or "
            "zipped, below; it then appears in the model picker of the Classify page's sidebar."
        )
        return
    st.dataframe(
        pd.DataFrame(
            {
                "name": [m.name for m in kept],
                "classes": [len(m.class_names) for m in kept],
                "input": [f"{m.input_size}×{m.input_size}" for m in kept],
                "preprocessing": [m.preprocessing for m in kept],
                "source": [m.entry.source for m in kept],
                "added": [m.entry.created_at for m in kept],
                "evaluated": [evaluated.get(m.name, "–") for m in kept],
            }
        ),
        hide_index=True,
        column_config={
            "name": st.column_config.TextColumn("Name"),
            "classes": st.column_config.NumberColumn("Classes", format="localized"),
            "input": st.column_config.TextColumn("Input"),
            "preprocessing": st.column_config.TextColumn("Preprocessing"),
            "source": st.column_config.TextColumn("Added from"),
            "added": st.column_config.DatetimeColumn("Added (UTC)", format="YYYY-MM-DD HH:mm"),
            "evaluated": st.column_config.TextColumn("Evaluated"),
        },
    )
    for model in kept:
        with st.expander(plain(model.name)):
            names = model.class_names
            more = f" and {len(names) - SHOWN_CLASSES:,} more" if len(names) > SHOWN_CLASSES else ""
            st.text(f"Classes: {', '.join(names[:SHOWN_CLASSES])}{more}")
            if model.taught:
                accuracy = model.details.accuracy
                said = f"; cross-validated accuracy {accuracy:.0%}" if accuracy is not None else ""
                st.caption(f"{plain(model.entry.source)}{said}. Retrain it on the Teach page.")
                teach_view.download_section(model.name)
            if not get_settings().allow_model_uploads or resources.why_models_are_not_kept():
                continue  # adding and removing are both turned off, or nothing is kept
            if st.session_state.get("confirm_remove") == model.name:
                st.warning(
                    f"Remove {plain(model.name)}? Its predictions stay in the history.",
                    icon=":material/warning:",
                )
                yes, no = st.columns(2)
                yes.button(
                    "Remove",
                    key=f"remove_yes_{model.name}",
                    type="primary",
                    on_click=_remove,
                    args=(model.name,),
                )
                no.button("Cancel", key=f"remove_no_{model.name}", on_click=_cancel_remove)
            else:
                st.button(
                    "Remove…",
                    key=f"remove_{model.name}",
                    on_click=st.session_state.__setitem__,
                    args=("confirm_remove", model.name),
                )


def _cancel_remove() -> None:
    st.session_state.pop("confirm_remove", None)


def _remove(name: str) -> None:
    st.session_state.pop("confirm_remove", None)
    try:
        scope = resources.model_scope()
        removed = scope is not None and models.remove(name, scope)
    except history.HistoryReadOnlyError as exc:
        st.session_state["own_models_error"] = plain(str(exc))
        return
    except Exception:
        log.exception("Removing the model %r failed", name)
        st.session_state["own_models_error"] = (
            f"{plain(name)} could not be removed; see the server log."
        )
        return
    st.session_state["own_models_notice"] = (
        f"Removed {plain(name)}." if removed else f"{plain(name)} was already removed."
    )
    if st.session_state.get("kept_model") == name:  # removed here: the picker goes back to
        del st.session_state["kept_model"]  # the default (removed elsewhere, it says so)


def add_a_model() -> None:
    """Upload a model (and labels), check it, pick its preprocessing and crop, try it on a
    picture, name it and keep it."""
    st.header("Add a model")
    if not get_settings().allow_model_uploads:
        st.info(
            "Adding models is turned off on this server (CLASSIFIER_ALLOW_MODEL_UPLOADS=0).",
            icon=":material/block:",
        )
        return
    if blocked := resources.why_models_are_not_kept():
        st.info(blocked, icon=":material/lock:")
        return
    round_ = st.session_state.setdefault("add_round", 0)  # a new round empties the uploaders
    model_file = st.file_uploader("Model file", key=f"add_model_{round_}", help=FORMATS_HELP)
    labels_file = st.file_uploader(
        "Labels file (not needed for a zip that holds labels.txt)",
        key=f"add_labels_{round_}",
        help="One class name per line, in the model's output order, or a JSON list.",
    )
    if model_file is None:
        st.caption(FORMATS_HELP)
        return
    candidate = _read(model_file, labels_file)
    if isinstance(candidate, str):
        st.error(plain(candidate))  # it may name the files in a zip
        return
    details = candidate.details
    names = candidate.class_names
    more = f" and {len(names) - SHOWN_CLASSES:,} more" if len(names) > SHOWN_CLASSES else ""
    size = details["size"]
    layout = f" ({details['layout']})" if details.get("layout") else ""  # ONNX: NCHW or NHWC
    st.success(
        f"{plain(candidate.source)}: {len(names):,} classes, input {size}×{size} "
        f"{details['input_dtype']}{layout}, outputs {details['outputs']}.",
        icon=":material/check_circle:",
    )
    if details.get("size_assumed"):
        st.caption(f"This model takes pictures of any size; it is given {size}×{size} pictures.")
    st.text(f"Classes: {', '.join(names[:SHOWN_CLASSES])}{more}")
    stem = PurePath(model_file.name).stem
    name = st.text_input(
        "Name",
        value="" if stem in EXPORT_NAMES else stem,
        max_chars=models.MAX_NAME_LENGTH,
        key=f"add_name_{round_}",
        placeholder="e.g. Cats and dogs",
    )
    options = list(models.SCALINGS)
    detected = candidate.detected_scaling
    scaling_name = st.selectbox(
        "Preprocessing",
        options,
        index=options.index(detected) if detected else None,
        format_func=lambda option: models.SCALINGS[option].title,
        placeholder="How were pixels scaled when the model was trained?",
        key=f"add_scaling_{round_}",
    )
    if not detected:
        st.caption("The file does not say how it scales pixels: pick what it was trained with.")
    elif candidate.format != "onnx":  # an ONNX model's is said under its crop
        st.caption(
            "Detected from the file"
            + (" (a Teachable Machine export)" if "Teachable" in candidate.source else "")
            + "; change it if the model was trained otherwise."
        )
    crops = list(models.CROPS)
    crop = st.selectbox(
        "Crop",
        crops,
        index=crops.index(candidate.detected_crop) if candidate.detected_crop in crops else 0,
        format_func=models.CROPS.__getitem__,
        key=f"add_crop_{round_}",
    )
    if details.get("crop_hint"):
        st.caption(
            "What torchvision and timm models expect, for a model taking channels first; "
            "change either if the model was trained otherwise."
        )
    test = st.file_uploader(
        "Try a picture before adding (optional)",
        type=sorted(images.ACCEPTED_EXTENSIONS),
        key=f"add_test_{round_}",
    )
    if test is not None and scaling_name is not None:
        _try(candidate, scaling_name, crop, test.getvalue())
    if st.button("Add model", type="primary", disabled=not name.strip() or scaling_name is None):
        _save(name, candidate, scaling_name, crop)


def _read(model_file, labels_file) -> models.Candidate | str:
    """Read the uploaded model once per upload (kept for this visit); return it or why not.

    Keyed by the uploads' ids, so a rerun neither hashes nor copies a large file again.
    """
    key = (model_file.file_id, labels_file.file_id if labels_file else None)
    kept = st.session_state.get("add_candidate")
    if kept is not None and kept[0] == key:
        return kept[1]
    data = model_file.getvalue()
    labels = labels_file.getvalue() if labels_file else None
    try:
        with st.spinner("Checking the model (a Keras model is converted: up to a minute)…"):
            outcome: models.Candidate | str = models.read_model(data, labels)
    except models.ModelFileError as exc:
        outcome = str(exc)
    except Exception:
        log.exception("Reading an uploaded model failed")
        outcome = "Something went wrong while reading this model; the server log has the details."
    st.session_state["add_candidate"] = (key, outcome)
    return outcome


def _try(candidate: models.Candidate, scaling_name: str, crop: float, data: bytes) -> None:
    """Classify a test picture with the model that is not kept yet, and show the answer."""
    try:
        prediction = classify(data, candidate.loaded(scaling_name, crop))
    except (images.ImageError, models.ModelError) as exc:  # a model may fail on a picture
        st.error(plain(str(exc)))
        return
    top = prediction.top(5)
    results.show_headline(top)
    results.show_chart(charts.top_k_frame(top))


def _save(name: str, candidate: models.Candidate, scaling_name: str, crop: float) -> None:
    try:
        scope = resources.model_scope()
        if scope is None or (blocked := resources.why_models_are_not_kept()):
            st.error(blocked or "Models cannot be kept here.")
            return
        model = models.save(name, candidate, scaling_name, scope, crop=crop)
    except (models.ModelFileError, models.ModelNameTaken, history.HistoryReadOnlyError) as exc:
        st.error(plain(str(exc)))  # it may say the name
        return
    except Exception:
        log.exception("Keeping the model %r failed", name)
        st.error("The model could not be kept; the server log has the details.")
        return
    st.session_state.pop("add_candidate", None)
    st.session_state["add_round"] = st.session_state.get("add_round", 0) + 1
    st.session_state["kept_model"] = model.name  # the Classify page's picker picks it
    st.session_state["own_models_added"] = model.name
    st.rerun()
