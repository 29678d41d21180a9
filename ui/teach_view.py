"""The Teach page's parts (pages/teach.py draws them): name classes, give each a few photos,
train, check, save.

The classes live in the session (`TeachSession`, kept as `st.session_state["teach"]`), so
they survive a visit to another page; each class keeps the photos its uploader, the camera
and the history gave it, by content digest. Another page hands corrected predictions over
with `start_from_history`: the classes they were corrected to, with their photos, as if the
person had named them and added the photos. Training embeds the photos (cached by digest),
cross-validates the head and keeps the result with a fingerprint of what it was trained
on: a class or photo changed afterwards asks for training again before saving.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import streamlit as st

from classifier import charts, history, images, models, teach
from classifier.config import get_settings
from classifier.history import teaching
from ui import account, pictures, resources
from ui.columns import plain

log = logging.getLogger(__name__)
NEW_MODEL = ""  # the "Start from" option of a model not taught yet
HISTORY_CHOICES = 48  # history rows offered at once
MISTAKES_SHOWN = 24
NAMES_LISTED = 5  # file names given for each reason in the "Not taken" note
STARTING_CLASSES = 2


@dataclass(eq=False)
class TeachClass:
    """One class being taught: its photos (digest -> photo) and, when retraining, old vectors."""

    id: int
    # Its name as last typed: its text box's value, kept here too (Streamlit forgets the
    # value of a widget that a page does not draw, so a visit to another page would).
    name: str = ""
    uploaded: dict[str, teach.Photo] = field(default_factory=dict)  # from its uploader
    added: dict[str, teach.Photo] = field(default_factory=dict)  # camera and history
    previous: int = 0  # photos the saved model was trained on (their vectors are kept)
    previous_name: str = ""  # the class's name in the saved model
    refused: str = ""  # why some of the last upload's files were not taken

    def photos(self) -> dict[str, teach.Photo]:
        """Return the class's new photos by content digest."""
        return {**self.uploaded, **self.added}

    def count(self) -> int:
        """Return how many photos the class would be trained on (new and from before)."""
        return len(self.photos()) + self.previous


@dataclass(frozen=True, eq=False)
class HandOff:
    """Photos another page handed over from the history (`start_from_history`)."""

    classes: tuple[tuple[str, dict[str, teach.Photo]], ...]  # (class, digest -> photo)
    rows: dict[str, int]  # digest -> the history row each photo came from
    corrected: int  # photos from corrected predictions
    rated_right: int  # photos from predictions rated right
    thumbnail_only: int  # photos that are only the small thumbnail
    left_out: int  # rated predictions without a picture, or past the limit

    @classmethod
    def of(cls, gathered: teaching.Gathered) -> HandOff:
        """Return the hand-off of the photos gathered from the history, one class per label."""
        classes = tuple(
            (label, {images.content_digest(p.data): teach.Photo(p.name, p.data, "") for p in got})
            for label, got in gathered.classes().items()
        )
        rows = {images.content_digest(p.data): p.id for p in gathered.photos}
        return cls(
            classes,
            rows,
            corrected=gathered.corrected,
            rated_right=gathered.rated_right,
            thumbnail_only=gathered.thumbnail_only,
            left_out=gathered.without_picture + gathered.left_out,
        )

    def digests(self) -> set[str]:
        """Return the handed photos' content digests."""
        return {digest for _, photos in self.classes for digest in photos}

    def note(self) -> str:
        """Say where the classes came from, and how many photos are only a thumbnail."""
        if not self.corrected:
            text = f"From {self.rated_right:,} prediction{_s(self.rated_right)} rated right"
        else:
            text = f"From {self.corrected:,} corrected prediction{_s(self.corrected)}"
            if self.rated_right:
                text += f" and {self.rated_right:,} rated right"
        if self.thumbnail_only:
            text += (
                f" ({self.thumbnail_only:,} with only a thumbnail, which is small: “Keep photos "
                "to teach from” in the Classify page's sidebar keeps larger ones)"
            )
        text += "."
        if self.left_out:
            text += (
                f" {self.left_out:,} more {'was' if self.left_out == 1 else 'were'} left out: "
                "no picture was kept, or past the limit of photos for one model."
            )
        return text


def _s(count: int) -> str:
    return "" if count == 1 else "s"


@dataclass(eq=False)
class TeachSession:
    """What one visit to the Teach page keeps (`st.session_state["teach"]`, see `session`).

    Widgets name a class by its id (an int), never the class itself: Streamlit keeps a
    callback's arguments with the widget, so a class (and its photos) given there could
    outlive the session's state (see `resources.freeze_imported_objects`). A class's name
    is its text box's value, `st.session_state[f"teach_name_{id}"]`, given back to the text
    box from `TeachClass.name` after a visit to another page; as is the pick under "Start
    from", from `continuing`.
    """

    classes: list[TeachClass] = field(default_factory=list)
    next_id: int = 0  # the id of the next class added (ids are never reused)
    continuing: str = NEW_MODEL  # the taught model picked under "Start from"
    base: str | None = None  # the base network of the model being retrained
    previous: teach.Examples | None = None  # its vectors, when retraining
    # The version (sha256) of each taught model this visit started from or saved: saving
    # under that name again replaces only that version (`teach.save`'s `started_from`).
    versions: dict[str, str] = field(default_factory=dict)
    result: teach.Taught | None = None  # the last training
    trained_on: tuple | None = None  # what that training was given (`_fingerprint`)
    saved_name: str | None = None  # the model this visit saved last
    saved_result: teach.Taught | None = None  # the training saved under it
    handed: HandOff | None = None  # photos handed over from the history, kept on Start from
    # The history row each photo taken from the history came from (by digest): one deleted
    # there since is left out when training (`leave_out_deleted`).
    history_rows: dict[str, int] = field(default_factory=dict)
    # What Train's check of those photos found, before the page was drawn
    # (`leave_out_deleted`): whether training may go on, and what to say.
    history_check: tuple[bool, str] = (True, "")
    # The photos go with the session; the memory they took goes back to the system then.
    memory: resources.GiveBackWhenFreed = field(
        default_factory=resources.GiveBackWhenFreed, repr=False
    )

    def add_class(self, name: str = "", previous: int = 0) -> TeachClass:
        """Add a class (named `name`, with `previous` photos from the saved model) at the end."""
        taught = TeachClass(self.next_id, name=name, previous=previous, previous_name=name)
        self.next_id += 1
        self.classes.append(taught)
        st.session_state[f"teach_name_{taught.id}"] = name
        return taught

    def remove_class(self, key: int) -> None:
        """Remove the class with this id (nothing if it is gone already)."""
        self.classes = [c for c in self.classes if c.id != key]

    def find(self, key: int) -> TeachClass | None:
        """Return the class with this id (None once removed)."""
        return next((c for c in self.classes if c.id == key), None)

    def fill(self) -> None:
        """Give a session without classes (a new one, or one starting over) its first ones."""
        if not self.classes:
            for _ in range(STARTING_CLASSES):
                self.add_class()

    def start_over(self, model: str) -> None:
        """Forget the classes, the training and what was saved: start from `model` (or anew).

        Photos handed over from the history stay (`add_handed` puts them back in).
        """
        self.continuing = model
        self.classes, self.result, self.previous = [], None, None
        self.versions = {}
        self.saved_name = self.saved_result = None

    def add_handed(self) -> None:
        """Put the photos handed over from the history in: each into the class of the same
        name (a retrained model's, or one named on the page; case aside), or into a new
        class of its own."""
        if self.handed is None:
            return
        by_name = {
            teaching.class_key(c.previous_name if c.previous else self.name_of(c)): c
            for c in self.classes
            if c.previous or self.name_of(c).strip()
        }
        self.history_rows.update(self.handed.rows)
        for label, photos in self.handed.classes:
            taught = by_name.get(teaching.class_key(label)) or self.add_class(label)
            taught.added.update(photos)

    @staticmethod
    def name_of(taught: TeachClass) -> str:
        """Return a class's name as its text box holds it now."""
        return st.session_state.get(f"teach_name_{taught.id}", taught.name)

    def has_work(self) -> bool:
        """Tell whether the person put photos of their own here (uploaded, taken or picked;
        not those handed over from the history)."""
        handed = self.handed.digests() if self.handed is not None else set()
        return any(taught.uploaded or taught.added.keys() - handed for taught in self.classes)

    def top_up(self) -> None:
        """Give a new model at least its first classes (empty ones after the handed ones)."""
        while len(self.classes) < STARTING_CLASSES:
            self.add_class()

    def photo_count(self, but: TeachClass | None = None) -> int:
        """Return how many photos the classes hold (new and from before), but one class's."""
        return sum(c.count() for c in self.classes if c is not but)


def session() -> TeachSession:
    """Return this visit's Teach session, made on its first visit, with classes to fill in."""
    if "teach" not in st.session_state:
        st.session_state["teach"] = TeachSession()
    state: TeachSession = st.session_state["teach"]
    state.fill()
    return state


def start_from(state: TeachSession) -> None:
    """Offer to retrain a taught model: its classes come back with the photos it knew."""
    try:
        scope = resources.model_scope()
        mine = models.all_models(scope) if scope is not None else []
        taught_names = [m.name for m in mine if m.taught]
    except Exception:
        log.exception("Listing the taught models failed")
        taught_names = []
    if not taught_names:
        state.continuing = NEW_MODEL
        return
    options = [NEW_MODEL, *taught_names]
    if "teach_start" not in st.session_state and state.continuing in options:
        st.session_state["teach_start"] = state.continuing  # forgotten on another page
    start = st.selectbox(
        "Start from",
        options,
        format_func=lambda name: name or "A new model",
        key="teach_start",
        help="Pick a model taught before to add photos or classes and train it again; "
        "it keeps its name.",
    )
    if start == state.continuing:
        return
    state.start_over(start)
    if start == NEW_MODEL:
        state.add_handed()
        state.top_up()
        st.session_state["teach_model_name"] = ""
        return
    try:
        base, examples, state.versions[start] = teach.taught_examples(start, scope)
    except models.UnknownModel:  # removed since the list was read
        st.error(gone(start))
        return
    except (teach.TeachError, models.ModelError) as exc:
        st.error(plain(str(exc)))  # it may say the model's name
        return
    state.previous, state.base = examples, base
    st.session_state["teach_model_name"] = start
    for name, count in examples.counts().items():
        state.add_class(name, previous=count)
    state.add_handed()


def start_from_history(
    ids: list[int] | None, model: str | None = None, since: datetime | None = None
) -> bool:
    """Open the Teach page with the photos of corrected predictions: one class per corrected
    label, holding those photos, ready to train (or to add to a taught model picked under
    "Start from"), as if the person had named the classes and added the photos. Photos the
    person already put on the Teach page stay: the ones handed over join their classes of
    the same name, or new ones.

    Predictions rated right join the class their answer names (`teaching.labelled_photos`).
    Call it from a page's script (`if st.button(...):`), not from a widget's callback: it
    switches page. When there is nothing to teach from, it says why where it is called and
    returns False.

    Args:
        ids: The predictions picked (the visitor's own; others are ignored); None: all the
            visitor's corrected predictions.
        model: Only the predictions of this model (its name as saved); None: every model's.
        since: Only the predictions saved then or later; None: however old.
    """
    if not get_settings().allow_model_uploads:
        st.warning(
            "Teaching models is turned off on this server (CLASSIFIER_ALLOW_MODEL_UPLOADS=0).",
            icon=":material/block:",
        )
        return False
    try:
        store = resources.store()
        gathered = None if store is None else teaching.labelled_photos(store, ids, model, since)
    except Exception:
        log.exception("Reading the history to teach from failed")
        st.error("The history cannot be read right now.")
        return False
    if gathered is None:
        st.warning("There is no history here to teach from.", icon=":material/block:")
        return False
    if not gathered.photos:
        if (said := gathered.nothing_to_teach()) is not None:
            problem = said
        else:
            problem = (
                f"None of {'these' if ids is not None else 'the saved'} predictions was "
                "corrected: rate one 👎 and give the right class to teach from it."
            )
        st.warning(problem, icon=":material/info:")
        return False
    if "teach" not in st.session_state:
        st.session_state["teach"] = TeachSession()
    state: TeachSession = st.session_state["teach"]
    if state.has_work():  # theirs stay: the photos join their classes of the same name
        _leave_out_handed()  # (those an earlier hand-over brought)
        state.classes = [c for c in state.classes if c.count() or state.name_of(c).strip()]
        state.handed = HandOff.of(gathered)
        state.add_handed()
        if state.continuing == NEW_MODEL:
            state.top_up()  # (a new model: at least its first classes)
    else:
        state.handed = HandOff.of(gathered)
        state.start_over(NEW_MODEL)  # the person may then pick a taught model under Start from
        st.session_state.pop("teach_start", None)
        st.session_state["teach_model_name"] = ""
        state.add_handed()
        state.top_up()
    st.switch_page("pages/teach.py")
    return True  # (switch_page stops this script run)


def history_note(state: TeachSession) -> None:
    """Say where the classes handed over from the history came from; offer to leave them out."""
    handed = state.handed
    if handed is None:
        return
    note_col, button_col = st.columns([5, 1], vertical_alignment="center")
    note_col.caption(handed.note())
    button_col.button(
        "Leave them out",
        key="teach_leave_out_history",
        on_click=_leave_out_handed,
        help="Take the photos from the history out of the classes (the classes that held "
        "only them go too).",
    )


def _leave_out_handed() -> None:
    state = session()
    handed, state.handed = state.handed, None
    if handed is None:
        return
    digests = handed.digests()
    for taught in list(state.classes):
        had = bool(taught.added)
        for digest in digests:
            taught.added.pop(digest, None)
        if had and not taught.photos() and not taught.previous:
            state.remove_class(taught.id)
    if state.continuing == NEW_MODEL:
        state.top_up()


def base_picker(state: TeachSession) -> str | None:
    """Return the base network to teach on (picked, or the retrained model's); None if none."""
    available = teach.bases()
    if not available:
        st.error("No built-in network has its weights on this server, so nothing can be taught.")
        return None
    if state.previous is not None and state.base is not None:  # retraining: its base
        base = state.base
        st.caption(f"Built on {plain(models.title_of(base))}, as when it was first taught.")
        return base
    default = teach.DEFAULT_BASE if teach.DEFAULT_BASE in available else available[0]
    return st.selectbox(
        "Built on",
        available,
        index=available.index(default),
        format_func=models.title_of,
        key="teach_base",
        help="The built-in network that describes each photo. EfficientNet-Lite0 is a good "
        "default; networks whose weights are not on this server are not offered.",
    )


def class_card(state: TeachSession, taught: TeachClass) -> None:
    """Draw a class's card: its name, photo count, uploader, camera, history and buttons."""
    key = taught.id
    with st.container(border=True):
        name_col, count_col, remove_col = st.columns([4, 2, 1], vertical_alignment="bottom")
        if f"teach_name_{key}" not in st.session_state:  # forgotten on another page
            st.session_state[f"teach_name_{key}"] = taught.name
        taught.name = name_col.text_input(
            "Class name",
            key=f"teach_name_{key}",
            max_chars=200,
            placeholder="e.g. Mug",
        )
        photos = taught.photos()
        count = taught.count()
        previous = f" ({taught.previous} from before)" if taught.previous else ""
        count_col.markdown(f"**{count} photo{'' if count == 1 else 's'}**{previous}")
        remove_col.button(
            "",
            icon=":material/delete:",
            key=f"teach_remove_{key}",
            help="Remove this class",
            disabled=len(state.classes) <= 1,
            on_click=_remove_class,
            args=(key,),
        )
        st.file_uploader(
            "Photos of this class",
            type=list(images.ACCEPTED_EXTENSIONS),
            accept_multiple_files=True,
            key=f"teach_upload_{key}",
            on_change=_read_uploads,
            args=(key,),
        )
        if taught.refused:  # Markdown, the file names made plain
            st.warning(taught.refused, icon=":material/block:")
        camera_col, history_col, clear_col = st.columns(3)
        if camera_col.toggle("Use camera", key=f"teach_use_camera_{key}"):
            shot = st.camera_input("Take a photo of this class", key=f"teach_camera_{key}")
            if shot is not None and st.session_state.get(f"teach_shot_{key}") != shot.file_id:
                st.session_state[f"teach_shot_{key}"] = shot.file_id
                data = shot.getvalue()
                taught.added[images.content_digest(data)] = teach.Photo(
                    f"camera photo {len(taught.added) + 1}", data, ""
                )
        if history_col.toggle("From the history", key=f"teach_use_history_{key}"):
            _history_picker(taught)
        if photos:
            clear_col.button(
                "Clear photos",
                key=f"teach_clear_{key}",
                on_click=_clear_photos,
                args=(key,),
                help="Forget this class's new photos (those the saved model knew stay).",
            )


def _class(key: int) -> TeachClass | None:
    """Return this session's class with this id (None once removed).

    The widgets' callbacks name a class by its id: Streamlit keeps a callback's arguments
    with the widget, so a class (and its photos) given there could outlive the session's
    state (see `resources.freeze_imported_objects`).
    """
    return session().find(key)


def add_class() -> None:
    """The "Add a class" button's callback: an empty class at the end."""
    session().add_class()


def _read_uploads(key: int) -> None:
    """Take a class's uploader's files (before the page is drawn, so its count is current).

    Only on a change: coming back from another page, the uploader is empty but the
    class keeps its photos. Files over the size limit, files that are no readable picture
    (each is decoded once) and photos past the limit of one training are not taken (the
    card says which and why): the session holds what it takes, and its count is of them.
    """
    state = session()
    taught = state.find(key)
    if taught is None:
        return
    settings = get_settings()
    others = state.photo_count(but=taught)
    room = settings.teach_max_photos - others - taught.previous - len(taught.added)
    files = st.session_state.get(f"teach_upload_{taught.id}") or []
    read_before, taught.uploaded = taught.uploaded, {}
    refused: dict[str, list[str]] = {}  # why -> the files' names
    no_room = 0
    for file in files:
        if file.size > settings.max_bytes:
            why = f"Over {images.size_text(settings.max_bytes)}."
            refused.setdefault(why, []).append(file.name)
        elif len(taught.uploaded) >= room:
            no_room += 1
        else:
            data = file.getvalue()
            digest = images.content_digest(data)
            if digest not in read_before and (why := _unreadable(data)):
                refused.setdefault(why, []).append(file.name)
            else:
                taught.uploaded[digest] = teach.Photo(file.name, data, "")
    lines = [
        f"{', '.join(plain(n) for n in names[:NAMES_LISTED])}"
        f"{f' and {len(names) - NAMES_LISTED} more' if len(names) > NAMES_LISTED else ''}: "
        f"{plain(why)}"
        for why, names in refused.items()
    ]
    if no_room:
        lines.append(
            f"{no_room} photo{'s' if no_room > 1 else ''}: past the limit of "
            f"{settings.teach_max_photos:,} photos for one model."
        )
    count = sum(len(names) for names in refused.values()) + no_room
    files_text = f"{len(files)} file{'' if len(files) == 1 else 's'}"
    taught.refused = "\n\n".join([f"Not taken: {count} of {files_text}.", *lines]) if count else ""


def _unreadable(data: bytes) -> str:
    """Return why a file cannot be taught from ("" if it can)."""
    try:
        images.decode_image(data, min_side=32)  # a JPEG at 1/8 scale: quick
    except images.ImageError as exc:
        return str(exc)
    return ""


def _remove_class(key: int) -> None:
    session().remove_class(key)


def _clear_photos(key: int) -> None:
    if (taught := _class(key)) is not None:
        taught.uploaded.clear()
        taught.added.clear()


def _history_picker(taught: TeachClass) -> None:
    """Offer saved predictions (those with a picture) to add to a class."""
    key = taught.id
    search = st.text_input(
        "Search the history by label",
        key=f"teach_history_search_{key}",
        placeholder="e.g. mug",
    )
    try:
        store = resources.store()
        if store is None:
            st.caption("Sign in to pick photos from your history." if account.visitor().sign_in
                       else "There is no history on this server to pick from.")  # fmt: skip
            return
        records = teaching.choices(store, history.Filters(label=search), HISTORY_CHOICES)
    except Exception:
        log.exception("Reading the history for the Teach page failed")
        st.error("The history cannot be read right now.")
        return
    if not records:
        st.caption("No saved predictions with a picture match.")
        return
    st.image(
        [pictures.inline(r.thumbnail) for r in records[:12]],
        caption=[f"#{r.id}" for r in records[:12]],
        width=72,
    )
    by_id = {r.id: r for r in records}
    picked = st.multiselect(
        "Pick the ones that show this class",
        list(by_id),
        format_func=lambda i: f"#{i} · {by_id[i].file_name} · {by_id[i].label}",
        key=f"teach_history_pick_{key}",
    )
    st.button(
        "Add them",
        key=f"teach_history_add_{key}",
        disabled=not picked,
        on_click=_add_from_history,
        args=(key, list(picked)),  # ids only: the rows are read again when clicked
    )


def _add_from_history(key: int, ids: list[int]) -> None:
    """Add the picked rows' pictures to a class (the photo kept to teach from, else the
    thumbnail), as far as one model's limit of photos allows; empty the picker. A row
    deleted since, or set aside as no usable photo, is not added."""
    st.session_state[f"teach_history_pick_{key}"] = []
    state = session()
    if (taught := state.find(key)) is None:
        return
    try:
        store = resources.store()
        if store is None:  # signed out meanwhile
            raise history.HistoryError("There is no history to add photos from.")
        found = [store.get(i) for i in ids]
        allowed = teaching.usable(store, [r.id for r in found if r is not None])
        usable = [r for r in found if r is not None and r.id in allowed]
        kept = store.photos([r.id for r in usable])
    except Exception:
        log.exception("Reading the picked history rows failed")
        taught.refused = "The history cannot be read right now; nothing was added."
        return
    room = get_settings().teach_max_photos - state.photo_count()
    for record in usable[: max(0, room)]:
        data = kept.get(record.id) or record.thumbnail or b""
        digest = images.content_digest(data)
        taught.added[digest] = teach.Photo(f"history #{record.id} ({record.file_name})", data, "")
        state.history_rows[digest] = record.id
    gone, no_room = len(ids) - len(usable), max(0, len(usable) - max(0, room))
    lines = [f"{gone} deleted or set aside as no usable photo since."] if gone else []
    if no_room:
        lines.append(
            f"{no_room}: past the limit of {get_settings().teach_max_photos:,} photos for "
            "one model."
        )
    taught.refused = (
        "\n\n".join([f"Not taken: {gone + no_room} of {len(ids)}.", *lines])
        if (gone or no_room)
        else ""
    )


def _collect(
    state: TeachSession,
) -> tuple[list[str], list[tuple[str, teach.Photo]], dict[str, str]]:
    """Return the class names as typed, every new photo (with its digest) labelled with its
    class, and the saved model's class names (being retrained) mapped to their names now.

    A photo given to two classes is in the list twice: training then says so.
    """
    names, photos, renamed = [], [], {}
    for taught in state.classes:
        name = st.session_state.get(f"teach_name_{taught.id}", "")
        names.append(name)
        for digest, photo in taught.photos().items():
            photos.append((digest, teach.Photo(photo.name, photo.data, teach.tidy(name))))
        if taught.previous:
            renamed[taught.previous_name] = teach.tidy(name)
    return names, photos, renamed


def _fingerprint(base: str, names: list[str], photos: list[tuple[str, teach.Photo]]) -> tuple:
    return base, tuple(names), tuple(sorted((p.label, d) for d, p in photos))


def train_section(state: TeachSession, base: str) -> None:
    """The Train button, then the last training's result and its saving."""
    names, photos, renamed = _collect(state)
    fingerprint = _fingerprint(base, names, photos)
    # The check runs as the button's callback, before the class cards are drawn, so that
    # they count the photos trained on.
    trained = st.button(
        "Train", type="primary", icon=":material/model_training:", on_click=leave_out_deleted
    )
    can_train, said = state.history_check if trained else (False, "")
    if said:
        if can_train:
            st.info(said, icon=":material/delete:")
        else:
            st.error(said)
    if can_train:
        state.result = None
        state.result = _train(state, base, names, [p for _, p in photos], renamed)
        state.trained_on = fingerprint
    result = state.result
    if result is None:
        return
    stale = state.trained_on != fingerprint
    _show_result(result, dict(photos))
    st.subheader("Save")
    if stale:
        st.warning(
            "The classes or photos changed since this training; train again to save them.",
            icon=":material/sync_problem:",
        )
    continuing = state.continuing
    st.session_state.setdefault("teach_model_name", continuing)
    name = st.text_input(
        "Model name",
        key="teach_model_name",
        max_chars=models.MAX_NAME_LENGTH,
        placeholder="e.g. Mugs on my desk",
        disabled=bool(continuing),
        help="Retraining a model keeps its name." if continuing else None,
    )
    saved = state.saved_result is result
    threshold = _threshold_toggle(result, saved)
    blocked = resources.why_models_are_not_kept()
    if blocked:
        st.info(blocked, icon=":material/lock:")
    if st.button(
        "Save model",
        icon=":material/save:",
        disabled=stale or saved or not name.strip() or bool(blocked),
    ):
        # Training again what this visit saved (or the model picked under "Start from")
        # replaces it under the same name.
        ours = {continuing, state.saved_name} - {NEW_MODEL, None}
        _save(state, name, result, replace=" ".join(name.split()) in ours, threshold=threshold)
    if saved:
        st.caption(f"Saved as {plain(state.saved_name)}.")
        st.page_link(
            "pages/classify.py",
            label="Classify a photo with it",
            icon=":material/image_search:",
            help="It is picked in the Classify page's sidebar.",
        )
        download_section(state.saved_name)


def leave_out_deleted() -> None:
    """Train's callback: take out of the classes the photos taken from the history whose
    rows were deleted there since (in this visit or elsewhere), and keep in the session
    how many; or, if the history cannot tell, that nothing is to be trained, and why."""
    state = session()
    state.history_check = (True, "")
    rows = {
        digest: row
        for digest, row in state.history_rows.items()
        if any(digest in taught.added for taught in state.classes)
    }
    if not rows:
        return
    try:
        store = resources.store()
        kept = None if store is None else store.public_ids(set(rows.values()))
    except Exception:
        log.exception("Checking the photos taken from the history failed")
        kept = None
    if kept is None:  # signed out meanwhile, or the database away
        state.history_check = (
            False,
            "The history cannot be read now, so the photos taken from it cannot be checked; "
            "nothing was trained. Try again in a moment (signed in, if you were).",
        )
        return
    gone = {digest for digest, row in rows.items() if row not in kept}
    for taught in state.classes:
        for digest in gone & taught.added.keys():
            del taught.added[digest]
    if gone:
        state.history_check = (
            True,
            f"{len(gone):,} photo{_s(len(gone))} taken from the history "
            f"{'was' if len(gone) == 1 else 'were'} deleted there since, so "
            f"{'it was' if len(gone) == 1 else 'they were'} left out.",
        )


def _train(
    state: TeachSession,
    base: str,
    names: list[str],
    photos: list[teach.Photo],
    renamed: dict[str, str],
) -> teach.Taught | None:
    """Embed the photos (with a progress bar) and train; show any problem as one sentence."""
    try:
        class_names = teach.check_classes(names)  # before any work
        _check_counts(state, class_names)  # before preparing the extractor (15-25 s)
        if not teach.extractor_ready(base):
            with st.spinner(
                f"Preparing {plain(models.title_of(base))} to describe photos (once per server, "
                "about 10 seconds)…"
            ):
                teach.extractor(base)
        bar = st.progress(0.0, text="Describing photos…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Describing photos… {done:,} of {total:,}")

        examples = teach.embed(photos, base, progress=progress) if photos else None
        bar.empty()
        previous = state.previous
        if examples is not None and examples.unreadable:
            listed = "; ".join(
                f"{plain(name)}: {plain(why)}" for name, why in examples.unreadable[:10]
            )
            more = len(examples.unreadable) - 10
            st.warning(
                f"Skipped {len(examples.unreadable)} photo(s) that could not be read: {listed}"
                + (f"; and {more} more." if more > 0 else ""),
                icon=":material/broken_image:",
            )
        if previous is not None and renamed:
            kept = previous.relabel(renamed)
            examples = kept if examples is None else kept + examples
        if examples is None:
            raise teach.TeachError("Give each class at least 2 photos, then train.")
        with st.spinner("Training…"):
            return teach.train(examples, class_names)
    except teach.TeachError as exc:
        st.error(plain(str(exc)))  # it may name classes and photos
    except Exception:
        log.exception("Teaching a model failed")
        st.error("Training failed; the server log has the details.")
    return None


def _check_counts(state: TeachSession, class_names: tuple[str, ...]) -> None:
    """Refuse a training that cannot be: a class with too few photos, counting those the
    saved model knew (the photos not yet read are counted; an unreadable one is found later).

    Raises:
        teach.TeachError: which class is short, or the hint when every class is.
    """
    counts = [taught.count() for taught in state.classes]
    if all(count < teach.MIN_PHOTOS for count in counts):
        raise teach.TeachError(f"Give each class at least {teach.MIN_PHOTOS} photos, then train.")
    for name, count in zip(class_names, counts, strict=True):
        if count < teach.MIN_PHOTOS:
            raise teach.TeachError(
                f"The class “{name}” has {count} photo{'' if count == 1 else 's'}; "
                f"each class needs at least {teach.MIN_PHOTOS}."
            )


def _show_result(result: teach.Taught, photos: dict[str, teach.Photo]) -> None:
    st.subheader("How well it learned")
    counts = result.examples.counts()
    st.metric(
        "Cross-validated accuracy",
        f"{result.accuracy:.0%}",
        help=f"{result.folds}-fold cross-validation: every photo was classified by a "
        "classifier trained without it.",
    )
    accuracy = result.class_accuracy()
    table_col, chart_col = st.columns([2, 3])
    table_col.dataframe(
        pd.DataFrame(
            {
                "class": list(result.class_names),
                "photos": [counts.get(n, 0) for n in result.class_names],
                "accuracy": [accuracy[n] for n in result.class_names],
            }
        ),
        hide_index=True,
        column_config={
            "class": st.column_config.TextColumn("Class"),
            "photos": st.column_config.NumberColumn("Photos"),
            "accuracy": st.column_config.ProgressColumn(
                "Right", format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
    chart_col.altair_chart(
        charts.confusion_chart(charts.confusion_frame(result.confusion(), result.class_names))
    )
    _show_mistakes(result, photos)
    _show_unsure(result)


def _show_mistakes(result: teach.Taught, photos: dict[str, teach.Photo]) -> None:
    mistakes = result.mistakes()
    if not mistakes:
        st.caption("Every photo was classified right in cross-validation.")
        return
    st.markdown(f"**Taken for another class ({len(mistakes)})**")
    shown, captions = [], []
    for number, truth, guess in mistakes[:MISTAKES_SHOWN]:
        photo = photos.get(result.examples.digests[number])
        name = result.examples.names[number]
        caption = f"{plain(name)}: {plain(truth)}, taken for {plain(guess)}"
        if photo is None:  # a photo the saved model knew: its picture is not kept
            st.caption(caption)
            continue
        try:
            decoded = images.decode_image(photo.data, min_side=96)
        except images.ImageError:
            continue
        shown.append(images.make_thumbnail(decoded.image, 160))
        captions.append(caption)
    if shown:
        st.image([pictures.inline(s) for s in shown], caption=captions, width=120)


def _show_unsure(result: teach.Taught) -> None:
    """Say which confidence its wrong answers had, and when a class of none of them helps."""
    st.subheader("When it is unsure")
    threshold = teach.unsure_threshold(result)
    if threshold is None:
        st.markdown("No wrong answers suggest a confidence threshold; the sidebar's applies.")
    elif threshold.value is None:
        st.markdown(
            f"Its wrong answers in cross-validation were up to {_at_most(threshold)} sure, "
            "as sure as most of its right answers: no threshold marks them unsure and leaves "
            "its right answers sure."
        )
    else:
        which = (
            "Its wrong answers"
            if threshold.wrong_below == threshold.wrong
            else f"{threshold.wrong_below} of its {threshold.wrong} wrong answers"
        )
        st.markdown(
            f"{which} in cross-validation were at most {_at_most(threshold)} sure: with "
            f"{threshold.value:.0%} as its threshold they are marked unsure, and "
            f"{threshold.right_kept} of its {threshold.right} right answers stay sure."
        )
    if teach.needs_other_class(result):
        st.info(
            f"It always answers with one of its {len(result.class_names)} classes, even for "
            "a photo of none of them: if it may see such photos, add a class named e.g. "
            "“Something else” with a few varied photos of none of these, and train again.",
            icon=":material/lightbulb:",
        )


def _at_most(threshold: teach.Threshold) -> str:
    """Say the wrong answers' confidence, rounded up (so that "at most" holds)."""
    return f"{math.ceil(threshold.wrong_at_most * 100 - 1e-9)}%"


def _threshold_toggle(result: teach.Taught, saved: bool) -> float | None:
    """Offer the threshold its cross-validation suggests as the model's; return it if taken."""
    threshold = teach.unsure_threshold(result)
    if threshold is None or threshold.value is None:
        return None
    use = st.toggle(
        f"Mark its answers below {threshold.value:.0%} as unsure",
        value=True,
        key="teach_use_threshold",
        disabled=saved,
        help="Kept with the model as its confidence threshold, and set in the sidebar when "
        "it is saved. Off: the sidebar's threshold stays as it is.",
    )
    return threshold.value if use else None


def _save(
    state: TeachSession,
    name: str,
    result: teach.Taught,
    *,
    replace: bool,
    threshold: float | None,
) -> None:
    try:
        scope = resources.model_scope()
        if scope is None or (blocked := resources.why_models_are_not_kept()):
            st.error(blocked or "Models cannot be kept here.")
            return
        model = teach.save(
            name, result, replace=replace, scope=scope, threshold=threshold,
            started_from=state.versions.get(" ".join(name.split())),
        )  # fmt: skip
    except models.ModelChanged as exc:
        st.error(plain(str(exc)))  # it says the name
        st.info(
            "To add your photos to its new version, pick “A new model” under Start from, then "
            "the model again, and add them there.",
            icon=":material/info:",
        )
        return
    except (teach.TeachError, models.ModelFileError, models.ModelNameTaken) as exc:
        st.error(plain(str(exc)))  # it may say the name
        return
    except history.HistoryReadOnlyError as exc:
        st.error(plain(str(exc)))
        return
    except Exception:
        log.exception("Saving the taught model %r failed", name)
        st.error("The model could not be saved; the server log has the details.")
        return
    state.saved_name, state.saved_result = model.name, result
    state.versions[model.name] = model.entry.sha256  # saving again replaces this version
    st.session_state["kept_model"] = model.name  # the sidebar's picker on the Classify page
    with_threshold = ""
    if threshold is not None:
        # Kept with the model: the sidebar's slider shows it while the model is picked.
        with_threshold = f", with {threshold:.0%} as its confidence threshold"
    st.session_state["teach_notice"] = (
        f"Saved {plain(model.name)}. It is now the model picked on the Classify page"
        f"{with_threshold}."
    )
    st.rerun()


def gone(name: str) -> str:
    """Say that a model picked or saved in this visit was removed since."""
    return f"The model “{plain(name)}” is not here any more: it was removed."


def download_section(name: str) -> None:
    """Offer a taught model as a Teachable Machine LiteRT zip (built once, on request).

    The zip is kept in the data folder under the model's digest, so a retrained model
    gets its own; the page holds no copy of it (the button reads it when clicked).
    """
    scope = resources.model_scope()
    if scope is None:  # (no models of their own)
        return
    try:
        path = models.download_path(name, scope)
    except models.UnknownModel:  # removed since it was saved (on the Models page, elsewhere)
        st.error(gone(name))
        return
    except models.ModelError as exc:
        st.error(plain(str(exc)))  # it says the model's name
        return
    slot = st.empty()  # once prepared, the Download button takes the place of "Prepare"
    if not path.is_file():
        if not slot.button(
            "Prepare a download",
            key=f"prepare_download_{name}",
            icon=":material/package_2:",
            help="The model as Teachable Machine's LiteRT export (model_unquant.tflite and "
            "labels.txt): use it anywhere, or add it back on the Models page.",
        ):
            return
        try:
            with st.spinner("Building the model file (about 15 seconds)…"):
                models.download(name, scope)
        except (models.ModelError, OSError) as exc:
            st.error(plain(str(exc)))  # it may say the model's name
            return
    slot.download_button(
        "Download (Teachable Machine LiteRT zip)",
        lambda: path.read_bytes(),
        file_name=f"{name}.zip",
        mime="application/zip",
        icon=":material/download:",
        key=f"download_{name}",
    )
