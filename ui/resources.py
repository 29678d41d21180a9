"""What one server process shares between sessions: loaded models, answers, the history store."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
import weakref
from dataclasses import replace
from datetime import UTC, datetime

import streamlit as st
from streamlit import config as streamlit_config
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from classifier import history, images, models
from classifier.config import get_settings
from classifier.history import owners
from classifier.predict import Prediction, classify
from ui import account
from ui.columns import plain

log = logging.getLogger(__name__)
PREVIEW_SIDE = 640  # the picture kept with a cached answer, for display and thumbnails
images.hand_back_large_buffers()  # sessions decoding large pictures must not stack up memory
RELEASE_MARGIN_SECONDS = 5  # after Streamlit's own time for a reconnect (disconnectedSessionTTL)


def load_model(
    name: str, own: dict[str, models.AddedModel] | None = None
) -> models.LoadedModel | None:
    """Return the model that answers for a name; on failure show why and return None.

    The name is resolved once: a model among `own` (the visitor's, as the sidebar listed
    them in this same run) without asking the database again, another with one query. A
    fragment's rerun (an upload) gets the sidebar's list of the last full run, which may
    name a model removed since: there the name is looked up again, among the visitor's
    models only (never another person's of that name). The catalog keeps each engine open
    once per process, and only a first load shows a spinner (a spinner costs ~20 ms a
    rerun). A built-in model's first-ever export runs in a child process: the server never
    holds TensorFlow, which at its peak would double or triple its memory.
    """
    try:
        listed = own if own and not in_fragment_rerun() else {}
        if name in listed or name in models.MODELS:
            choice = models.choose(listed.get(name, name))
        else:  # among this visitor's models only: never another person's of that name
            scope = model_scope()
            if scope is None:
                raise models.UnknownModel(f"No model of this visitor is called {name!r}.")
            choice = models.choose(name, scope)
        if models.is_loaded(choice):
            loaded = models.load(choice, in_child=True)
        else:
            with st.spinner(_loading_text(choice)):
                loaded = models.load(choice, in_child=True)
    except models.UnknownModel:
        if name in models.MODELS:
            raise
        st.error(
            f"The model “{plain(name)}” is not here any more: it was removed. Pick another "
            "model in the sidebar.",
            icon=":material/delete:",
        )
        return None
    except models.ModelError as exc:
        st.error(str(exc))
        return None
    if loaded.cache_notice:  # set on the load that repaired or moved the engine cache: once
        st.warning(loaded.cache_notice, icon=":material/build:")
    return loaded


@st.cache_resource(show_spinner=False)
def latencies() -> dict[str, models.Latency]:
    """Return the latencies measured in this server process, by the model that ran.

    Shared by every visit: a latency is the server's, so it is still there on the next one.
    """
    return {}


def in_fragment_rerun() -> bool:
    """Tell whether this script run reruns fragments only (their arguments are those of the
    last full run), not the whole page."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def _loading_text(choice: models.Choice) -> str:
    """Say what a first load waits for: opening the engine file, or making it (once)."""
    answering = choice.spec
    try:
        first_time = (
            answering.kind is models.Kind.BUILTIN
            and models.cached_engine_path(answering.name) is None
        )
    except Exception:  # the load itself will say what is wrong
        return f"Loading {models.title_of(choice.requested)}…"
    if first_time:
        return (
            f"Preparing {answering.title} for this server: a one-time export, "
            "about half a minute. Later visits start at once…"
        )
    return f"Loading {answering.title}…"


_frozen = False
_freezing = threading.Lock()


def freeze_imported_objects() -> None:
    """Keep the objects that imports made out of the garbage collector's way, once.

    Streamlit runs a full collection after every script run (`runner.postScriptGC`).
    Over the ~150,000 objects Streamlit, pandas, Altair and SQLAlchemy make when they are
    imported, each one holds the interpreter for ~80 ms, which every other session
    then waits for. Objects frozen by gc.freeze() are skipped by collections (and still
    freed when nothing refers to them). Done once per process, at the end of its first
    run, when one visit at most has made objects of its own: a frozen object that later
    becomes garbage in a reference cycle is never collected, so freezing again when a
    page imports more (about 10 ms a collection for all the pages' later imports) would
    pin the sessions open at that moment. The one visit open at the freeze is released
    when it is over (`_release_when_over`).
    """
    global _frozen
    with _freezing:
        if _frozen:
            return
        _frozen = True
        gc.collect()  # what is garbage now is freed, not frozen
        gc.freeze()
        try:
            _release_when_over(get_script_run_ctx(suppress_warning=True))
        except Exception:  # another Streamlit: that session stays, as it did before
            log.exception("Cannot watch the first session to release it when it is over")


def _release_when_over(ctx) -> None:
    """Drop what the session frozen with the imports holds, once it is over.

    That session (the process's first) is in reference cycles the collector no longer
    looks at, so Streamlit never frees it: not its uploaded files, nor its session state
    (a Teach session's photos). Once it has been disconnected for longer than Streamlit
    keeps a session for a reconnect, a thread drops both, as freeing it would have, and
    hands the memory back. Only Streamlit's thread-safe calls are made from that thread.
    """
    if ctx is None or not runtime.exists():
        return  # not a server (AppTest, a script)
    server = runtime.get_instance()
    session = server.get_app_session(ctx.session_id)
    if session is None:
        return
    session_id, state, files = ctx.session_id, session.session_state, server.uploaded_file_mgr
    wait = float(streamlit_config.get_option("server.disconnectedSessionTTL"))
    wait += RELEASE_MARGIN_SECONDS

    def release() -> None:
        seen = time.monotonic()  # when it was last seen connected
        while time.monotonic() - seen < wait:
            time.sleep(0.5)
            if server.is_active_session(session_id):
                seen = time.monotonic()
        files.remove_session_files(session_id)
        state.clear()
        give_back_freed_memory()

    threading.Thread(target=release, name="release-first-session", daemon=True).start()


def give_back_freed_memory() -> bool:
    """Hand the memory freed inside the heap back to the system now (glibc's malloc_trim).

    Freed blocks below the mmap threshold (a 12 MP JPEG upload, ~3.5 MB) stay in the
    arena of the thread that allocated them, counted in the server's RSS, until reused.
    Takes ~10-100 ms (the GIL is released meanwhile); returns whether it could be done.
    """
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


class GiveBackWhenFreed:
    """Kept in a session's state: when the state is freed (its session over, with the photos
    and uploads it held), the memory freed with it goes back to the system a moment later."""

    def __init__(self) -> None:
        weakref.finalize(self, _give_back_soon).atexit = False


_give_back_due = False


def _give_back_soon() -> None:
    """Give memory back in a second, once the collection that freed a session has finished."""
    global _give_back_due
    if _give_back_due:
        return
    _give_back_due = True

    def give_back() -> None:
        global _give_back_due
        _give_back_due = False
        give_back_freed_memory()

    timer = threading.Timer(1.0, give_back)
    timer.daemon = True
    timer.start()


@st.cache_data(show_spinner=False, max_entries=64, ttl=3600)
def _predict(
    content_digest: str, model_name: str, version: str, _data: bytes, _loaded: models.LoadedModel
) -> Prediction:
    """Classify bytes once per (content, model); the bytes' sha256 is the cache key.

    `version` tells apart two added models that had the same name.
    """
    prediction = classify(_data, _loaded)
    preview = prediction.image.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return replace(prediction, image=preview)


def predict(content_digest: str, loaded: models.LoadedModel, data: bytes) -> Prediction:
    """Classify bytes, reusing the server's answer for the same picture and model.

    Reruns, slider moves and other sessions reuse an answer. One this visit already
    had says it is cached (`cached`), so its engine and timings are not shown as
    today's. An answer another visit made is dated to the moment this visit first had
    it, now and on every later rerun, so nobody learns from "cached" or its time that
    someone else classified the same picture, or when.
    """
    asked = datetime.now(UTC)
    model_name, version = loaded.requested, loaded.spec.version
    prediction = _predict(content_digest, model_name, version, data, loaded)
    seen: dict[tuple[str, str, str], datetime] = st.session_state.setdefault("answers_seen", {})
    key = (content_digest, model_name, version)
    had_it = key in seen
    first_had = seen.setdefault(key, asked)
    if had_it:  # always the moment this visit first had it, even if the cache made it anew
        return replace(prediction, computed_at=first_had, cached=True)
    if prediction.computed_at < first_had:  # made before this visit asked: by another one
        prediction = replace(prediction, computed_at=first_had)
    return prediction


def store() -> history.HistoryStore | None:
    """Return the history as this visitor may see and change it; None where they have none.

    One store (one connection pool) serves every session; each gets it scoped to the
    visitor (`account.Visitor.scope`), so every query keeps to their rows. None means
    nothing is saved for them: a private history they have not signed in to, or history off.
    A SQLite file that cannot be written (a read-only folder) is opened read-only:
    the store's `read_only` says so, and saving to it raises HistoryReadOnlyError.
    """
    person = account.visitor()
    if person.scope is None:
        return None
    whole = history.shared_store(get_settings().history_url())
    account.remember_once(whole, person)
    return whole.scoped(person.scope)


def model_scope() -> owners.Scope | None:
    """Return whose added and taught models this visitor sees and owns; None: no one's.

    As the history, except that with history off the models that belong to nobody (added
    from the command line, or before owners) stay usable, and none can be added.
    """
    person = account.visitor()
    if person.mode == "off" and person.problem is None:
        return owners.Scope.nobodys()
    return person.scope


def why_models_are_not_kept() -> str | None:
    """Say why this visitor cannot keep (add, teach, remove) models; None if they can."""
    person = account.visitor()
    if person.can_save:
        return None
    if person.problem is not None:
        return person.problem
    if person.mode == "off":
        return "Nothing is saved on this server, so models cannot be kept here."
    if person.sign_in:
        return "Sign in to keep your own models: each person sees only theirs."
    return "Sign-in is not configured on this server, so models cannot be kept."


def own_models() -> dict[str, models.AddedModel]:
    """Return the models this visitor may use that people added or taught, by name; none
    (and a log line) if the database fails. One database query.

    The picker then offers the built-in models only, and the Models page says why.
    """
    scope = model_scope()
    if scope is None:
        return {}
    _drop_orphaned_files_now_and_then()
    try:
        return {m.name: m for m in models.all_models(scope)}
    except Exception:
        log.exception("Listing the added models failed")
        return {}


ORPHAN_SWEEP_SECONDS = 600
_swept_at: float | None = None


def _drop_orphaned_files_now_and_then() -> None:
    """Delete, every ORPHAN_SWEEP_SECONDS, this server's copies of models removed elsewhere."""
    global _swept_at
    if _swept_at is not None and time.monotonic() - _swept_at < ORPHAN_SWEEP_SECONDS:
        return
    _swept_at = time.monotonic()
    try:
        models.drop_orphaned_files()
    except Exception:  # tidying up never stops the page
        log.exception("Deleting the files of removed models failed")
