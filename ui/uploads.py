"""The pictures a person gives the Classify page: uploads, the camera, the examples."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

from classifier import images
from classifier.config import get_settings
from ui import pictures

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"
EXAMPLES = {
    "Cat": "cat.jpg",
    "Coffee": "coffee.jpg",
    "Rocket": "rocket.jpg",
    "Flower": "flower.jpg",
    "Palace": "palace.jpg",
}
EXAMPLE_KEY_PREFIX = "example-"  # an example's Upload.key: "example-cat.jpg"
REMEMBERED_PICTURES = 200  # per session: enough for any batch, bounded over a long visit


@dataclass(frozen=True)
class Upload:
    """One picture to classify: a stable id for this session, its name, bytes and digest."""

    key: str
    name: str
    data: bytes

    @property
    def example(self) -> bool:
        """Whether this is one of the app's example photos (its key is "example-<file>")."""
        return self.key.startswith(EXAMPLE_KEY_PREFIX)

    @property
    def digest(self) -> str:
        """The sha256 of the bytes, hashed once per upload rather than on every rerun."""
        known = st.session_state.setdefault("digests", {})
        if self.key not in known:
            known[self.key] = images.content_digest(self.data)
        return known[self.key]


EXAMPLE_SIDE = 88  # px: each example's picture on the page
PHONE_SIDE = 56  # px: on a screen up to 640 px wide


@functools.cache
def example_styles() -> str:
    """Return the CSS that draws each example's button as its picture, made once per server.

    Streamlit has no clickable picture: `st.image` opens a full-screen view or, with a
    link, a new tab (a new session, losing the page). So each example is an `st.button`
    (one click, focusable with Tab, pressed with Enter or Space, named by its title for
    screen readers) whose background is the photo, drawn above its title. The selector
    is the class Streamlit gives a widget's container from its key ("st-key-<key>").
    """
    side = EXAMPLE_SIDE
    rules = [
        ".st-key-examples button {"
        f" width: {side + 8}px; min-height: {side + 36}px; padding: {side + 8}px 4px 4px;"
        f" background-size: {side}px {side}px; background-position: center 4px;"
        " background-repeat: no-repeat; }",
        # On a phone, smaller pictures keep the five in one row.
        f"@media (max-width: 640px) {{ .st-key-examples button {{ width: {PHONE_SIDE + 6}px;"
        f" min-height: {PHONE_SIDE + 32}px; padding: {PHONE_SIDE + 6}px 2px 2px;"
        f" background-size: {PHONE_SIDE}px {PHONE_SIDE}px; background-position: center 3px;"
        " font-size: 0.8rem; } .st-key-examples { gap: 6px; } }",
    ]
    for title, file_name in EXAMPLES.items():
        with Image.open(EXAMPLES_DIR / file_name) as photo:
            square = ImageOps.fit(photo.convert("RGB"), (2 * side, 2 * side))  # sharp at 2x
        uri = pictures.inline(images.make_thumbnail(square, 2 * side))
        rules.append(f'.st-key-{_example_key(title)} button {{ background-image: url("{uri}"); }}')
    return "<style>\n" + "\n".join(rules) + "\n</style>"


@functools.cache
def example_bytes(file_name: str) -> bytes:
    """Return an example photo's bytes, read once per server rather than on every rerun."""
    return (EXAMPLES_DIR / file_name).read_bytes()


def _example_key(title: str) -> str:
    return f"example_{title.lower()}"


def _pick_example(title: str) -> None:
    """Pick an example, or remove it when it is the one picked."""
    st.session_state["example"] = None if st.session_state.get("example") == title else title
    _inputs_changed()


def _example_buttons() -> str | None:
    """Draw the examples as a row of pictures to click; return the one picked, or None."""
    st.html(example_styles())
    picked = st.session_state.get("example")
    st.caption("Or try an example")
    with st.container(horizontal=True, key="examples", gap="small"):
        for title in EXAMPLES:
            chosen = title == picked
            st.button(
                title,
                key=_example_key(title),
                type="primary" if chosen else "secondary",
                help="Click again to remove it." if chosen else None,
                on_click=_pick_example,
                args=(title,),
            )
    return picked


def uploader_limit_mb() -> int:
    """Return the uploader's own limit in whole MB: the picture limit, rounded up.

    The uploader shows it ("20MB per file") and refuses a larger file on its own, before it
    is sent. Its MB are decimal (Streamlit counts binary ones on Windows only), as
    `images.size_text` says sizes.
    """
    return max(1, math.ceil(get_settings().max_bytes / 1_000_000))


def uploader_label() -> str:
    """Return the uploader's label: the limit only when the uploader cannot say it exactly.

    A limit of whole MB is said once, by the uploader. Any other ("1.5 MB") is named in the
    label, and a file between it and the uploader's rounded-up MB gets the app's sentence.
    """
    limit = get_settings().max_bytes
    if limit == uploader_limit_mb() * 1_000_000:
        return "Drop photos here"
    return f"Drop photos here, up to {images.size_text(limit)} each"


def _inputs_changed() -> None:
    st.session_state["showing_kept"] = False


def _own_pictures_changed() -> None:
    """A photo of the person's own puts the example away: theirs is what they want answered."""
    st.session_state["example"] = None
    _inputs_changed()


def _forget_kept() -> None:
    st.session_state["showing_kept"] = False
    st.session_state["kept_pictures"] = []


def collect_uploads() -> list[Upload]:
    """Draw the inputs (uploader, camera, examples) and return the pictures they hold.

    Streamlit empties the uploader when the person visits another page. The last
    pictures are kept in the session and shown again on return, until the person
    drops, takes or picks new ones.
    """
    if "uploads" not in st.session_state and st.session_state.get("kept_pictures"):
        st.session_state["showing_kept"] = True  # back from another page
    files = st.file_uploader(
        uploader_label(),
        type=list(images.ACCEPTED_EXTENSIONS),
        accept_multiple_files=True,
        key="uploads",
        on_change=_own_pictures_changed,
        help="PNG, JPEG, WebP, BMP, GIF, TIFF or HEIC, several at once if you like.",
        max_upload_size=uploader_limit_mb(),
    )
    camera_col, example_col = st.columns([1, 3], vertical_alignment="bottom")  # 5 in a row
    use_camera = camera_col.toggle("Use camera", key="use_camera")
    with example_col:
        example = _example_buttons()
    shot = (
        st.camera_input("Take a photo", key="camera", on_change=_own_pictures_changed)
        if use_camera
        else None
    )

    uploads = [Upload(f.file_id, f.name, f.getvalue()) for f in files or []]
    if shot is not None:
        uploads.append(Upload(shot.file_id, "camera photo", shot.getvalue()))
    if example:
        file_name = EXAMPLES[example]
        uploads.append(Upload(EXAMPLE_KEY_PREFIX + file_name, file_name, example_bytes(file_name)))
    if st.session_state.get("showing_kept"):
        caption, clear = st.columns([4, 1], vertical_alignment="center")
        caption.caption("Your last pictures, kept while you were on another page.")
        clear.button("Clear them", key="clear_kept", on_click=_forget_kept)
        uploads = st.session_state["kept_pictures"]
    else:
        st.session_state["kept_pictures"] = uploads
    _bound_session_memory()
    return uploads


def _bound_session_memory() -> None:
    """Keep per-picture session state (digests, saved row ids) for the latest pictures only."""
    for name in ("digests", "saved_rows"):
        remembered = st.session_state.get(name, {})
        for key in list(remembered)[: max(0, len(remembered) - REMEMBERED_PICTURES)]:
            del remembered[key]  # oldest first: dicts keep insertion order
