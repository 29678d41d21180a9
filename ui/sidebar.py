"""The settings sidebar every page shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from classifier import images, models
from classifier.config import get_settings
from classifier.predict import UNSURE_BELOW
from ui import account, resources
from ui.columns import plain
from ui.state import kept

MAX_TOP_K = 10


@dataclass(frozen=True)
class Choices:
    """What the person chose in the sidebar."""

    model: str
    top_k: int
    threshold: float
    save: bool
    save_thumbnails: bool
    own: dict[str, models.AddedModel] = field(default_factory=dict)  # as listed in this run
    loaded: models.LoadedModel | None = None  # the model that answers, once resolved
    compare: str | None = None  # a second model whose answers are shown beside the first's
    save_photos: bool = False  # keep a reduced copy of each saved photo, to teach from

    def title_of(self, name: str) -> str:
        """Return a model's title as the picker shows it (a person's own model is marked)."""
        kinds = {n: "taught" if m.taught else "added" for n, m in self.own.items()}
        return model_title(name, kinds)


def model_title(name: str, kinds: dict[str, str] | None = None) -> str:
    """Return a model's title, marked when this server would answer with the fallback.

    `kinds` says which of the people's models were "added", which "taught", and which
    picked one was "removed" since.
    """
    if name not in models.MODELS:  # a model someone added or taught
        kind = (kinds or {}).get(name, "added")
        if name.endswith(")") and "(" in name:  # "Animals (Keras, added)": one pair
            return f"{name[:-1]}, {kind})"
        return f"{name} ({kind})"
    title = models.title_of(name)
    return title if models.weights_status(name).available else f"{title} (unavailable)"


PICKER_HELP = (
    "The network that classifies your photos: an ImageNet network, a model added on "
    "the Models page, or one taught on the Teach page. ImageNet models marked unavailable "
    "have no weights on this server (Keras downloads them once, and this server cannot); "
    "picking one answers with "
    "EfficientNet-Lite0, whose weights ship with the app."
)


COMPARE_HELP = (
    "Classify each photo with a second model too, and see its answers beside the first "
    "model's and whether they agree. Only the first model's answers are saved to the history."
)


PHOTOS_HELP = (
    "Also keep a copy of each saved photo, at least "
    f"{images.PHOTO_MIN_SIDE} pixels on its shorter side (more if the model looks at larger "
    "pictures), without its camera details, so that a model can be taught from it later. "
    "Off: the thumbnail alone. Kept with thumbnails only."
)


def settings_sidebar(compare: bool = False, *, photos: bool | None = None) -> Choices:
    """Draw the classifier settings in the sidebar and return them.

    Args:
        compare: Also offer a second model to compare with (the Classify page).
        photos: Offer to keep a copy of each saved photo to teach from; None: where a second
            model is offered (the Classify page, the one page that keeps them).
    """
    default, opened_elsewhere = models.runnable_default()
    person = account.visitor()
    account.account_sidebar(person)
    with st.sidebar:
        st.header("Settings")
        listed = resources.own_models()
        kinds = {name: "taught" if model.taught else "added" for name, model in listed.items()}
        names = [*models.MODELS, *kinds]
        kept_model = st.session_state.get("kept_model")
        if kept_model is not None and kept_model not in names:
            # Removed since it was picked (maybe on another replica): it stays picked, marked,
            # and answers nothing, rather than another model quietly answering in its place.
            names.append(kept_model)
            kinds = {**kinds, kept_model: "removed"}
        model = st.selectbox(
            "Model",
            names,
            format_func=lambda name: model_title(name, kinds),
            help=PICKER_HELP,
            **kept("model", default),
        )
        if opened_elsewhere and not st.session_state.get("told_default"):
            st.session_state["told_default"] = True  # once per visit
            st.info(opened_elsewhere, icon=":material/info:")
        if model in models.MODELS and not models.weights_status(model).available:
            st.caption(f"Answers come from {models.title_of(models.FALLBACK_MODEL)}.")
        second = compare_picker(model, names, kinds) if compare else None
        top_k = st.slider("Classes to show", 1, MAX_TOP_K, **kept("top_k", 5))
        own_threshold = apply_own_threshold(model, listed)
        threshold = st.slider(
            "Confidence threshold",
            0.0,
            1.0,
            step=0.05,
            format="percent",
            help="Below this, the page says the model is unsure.",
            **kept("threshold", UNSURE_BELOW),
        )
        if own_threshold is not None:
            st.caption(
                f"{own_threshold:.0%} is {plain(model)}'s own, from its cross-validation; "
                "another model gives back the one set before."
            )
        if person.can_save:
            shared = " Everyone who opens this app sees them." if person.mode == "shared" else ""
            save = st.toggle(
                "Save to history",
                help=f"Keep each prediction on the History page.{shared}",
                **kept("save", True),
            )
            save_thumbnails = st.toggle(
                "Save thumbnails",
                disabled=not save,
                help="Off: history keeps the labels but no picture.",
                **kept("save_thumbnails", True),
            )
            save_photos = False
            if compare if photos is None else photos:
                with_pictures = save and save_thumbnails
                save_photos = photo_toggle(enabled=with_pictures) and with_pictures
            if shared and save:
                st.caption(f":material/group: Saved predictions are shared.{shared}")
        else:
            save = save_thumbnails = save_photos = False
            if person.mode == "off":
                st.caption(f":material/history_toggle_off: {account.MODE_TEXT['off']}")
            elif person.sign_in:
                st.caption(":material/lock: Predictions are not saved until you sign in.")
    return Choices(
        model,
        top_k,
        threshold,
        save,
        save_thumbnails,
        listed,
        compare=second,
        save_photos=save_photos,
    )


def photo_toggle(enabled: bool) -> bool:
    """Draw "Keep photos to teach from" (its default: CLASSIFIER_KEEP_PHOTOS) and return it."""
    return st.toggle(
        "Keep photos to teach from",
        disabled=not enabled,
        help=PHOTOS_HELP,
        **kept("save_photos", get_settings().keep_photos),
    )


def apply_own_threshold(model: str, listed: dict[str, models.AddedModel]) -> float | None:
    """Set the threshold slider to a taught model's own threshold while it is picked, and
    give back the person's own once another model is; return the model's, if it has one.

    The person's value is kept aside when a model with its own threshold is picked; moving
    the slider meanwhile changes it for this pick only.
    """
    own = listed[model].details.threshold if model in listed else None
    state = st.session_state
    shown_for = state.get("threshold_shown_for")  # (model, threshold) the slider was set to
    if own is not None and shown_for != (model, own):  # (a model taught again has a new one)
        if shown_for is None:
            state["threshold_set_before"] = state.get("kept_threshold", UNSURE_BELOW)
        state["kept_threshold"], state["threshold_shown_for"] = own, (model, own)
    elif own is None and shown_for is not None:
        state["kept_threshold"] = state.pop("threshold_set_before", UNSURE_BELOW)
        state["threshold_shown_for"] = None
    return own


def compare_picker(model: str, names: list[str], kinds: dict[str, str]) -> str | None:
    """Draw the "Compare with" picker (off by default) and return the second model, if any.

    It offers the first picker's models but the one picked there; a second model that is
    picked first, or removed, is let go.
    """
    others = [name for name in names if name != model and kinds.get(name) != "removed"]
    let_go = st.session_state.get("kept_compare")
    if let_go not in others:
        st.session_state["kept_compare"] = None
        if let_go is not None:  # said, not done quietly
            name = plain(model_title(let_go, kinds))
            st.toast(f"Compare with: {name} is the first model now, or gone; no second model.")
    return st.selectbox(
        "Compare with",
        [None, *others],
        format_func=lambda name: "No second model" if name is None else model_title(name, kinds),
        placeholder="No second model",  # what a picker whose value is None shows
        help=COMPARE_HELP,
        **kept("compare", None),
    )
