"""The pictures a person gives the Classify page: uploads, the camera, the examples."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

from classifier import images
from classifier.config import get_settings

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"
EXAMPLES = {"Cat": "cat.jpg", "Coffee": "coffee.jpg", "Rocket": "rocket.jpg"}
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
        return self.key.startswith("example-")

    @property
    def digest(self) -> str:
        """The sha256 of the bytes, hashed once per upload rather than on every rerun."""
        known = st.session_state.setdefault("digests", {})
        if self.key not in known:
            known[self.key] = images.content_digest(self.data)
        return known[self.key]


@functools.cache
def example_thumbnails() -> dict[str, bytes]:
    """Return a small square thumbnail of each example photo, made once per server."""
    thumbnails = {}
    for title, file_name in EXAMPLES.items():
        with Image.open(EXAMPLES_DIR / file_name) as photo:
            square = ImageOps.fit(photo.convert("RGB"), (176, 176))
        thumbnails[title] = images.make_thumbnail(square, 176)
    return thumbnails


def _inputs_changed() -> None:
    st.session_state["showing_kept"] = False


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
    limit = images.size_text(get_settings().max_bytes)
    files = st.file_uploader(
        f"Drop photos here, up to {limit} each",
        type=list(images.ACCEPTED_EXTENSIONS),
        accept_multiple_files=True,
        key="uploads",
        on_change=_inputs_changed,
        help="PNG, JPEG, WebP, BMP, GIF, TIFF or HEIC, several at once if you like.",
    )
    camera_col, example_col = st.columns([1, 2], vertical_alignment="bottom")
    use_camera = camera_col.toggle("Use camera", key="use_camera")
    with example_col:
        st.image(list(example_thumbnails().values()), caption=list(EXAMPLES), width=88)
        example = st.pills(
            "Or try an example", list(EXAMPLES), key="example", on_change=_inputs_changed
        )
    shot = (
        st.camera_input("Take a photo", key="camera", on_change=_inputs_changed)
        if use_camera
        else None
    )

    uploads = [Upload(f.file_id, f.name, f.getvalue()) for f in files or []]
    if shot is not None:
        uploads.append(Upload(shot.file_id, "camera photo", shot.getvalue()))
    if example:
        file_name = EXAMPLES[example]
        uploads.append(
            Upload(f"example-{file_name}", file_name, (EXAMPLES_DIR / file_name).read_bytes())
        )
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
