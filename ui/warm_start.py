"""What a server does once when it starts, so that its first visitors do not wait for it.

A fresh server's first Classify visit used to import the pages' modules (pandas, Altair,
pyarrow and the app's own: about half a second holding the GIL, which every other
session's first run waited behind) and the first photo opened the default model's
engine and ran it once. Here both are done in a background thread as the server starts.

Only a sound engine file already in the configured cache folder is opened, and only on
LiteRT: a first-ever export, a damaged file, an unwritable cache folder or a server
without LiteRT is left to the first visit, whose page says what is happening (those
notices are told once per process, so the warm start must not take them).

Importing leaves garbage and freed heap behind (tens of MB). Collected and handed back to
the system at the end, or the server's peak with 16 sessions at once is ~35 MB higher.

`CLASSIFIER_WARM_START=off` leaves both to the first visit: a server that should hold as
little memory as it can until someone comes (the engine and the modules hold about 150
MB: BENCHMARKS.md, "Memory").
"""

from __future__ import annotations

import gc
import io
import logging
import threading

log = logging.getLogger(__name__)
_started = threading.Event()


def begin() -> None:
    """Start warming this server in a background thread (once per process), unless
    CLASSIFIER_WARM_START is off."""
    if _started.is_set():
        return
    _started.set()
    if _wanted():
        threading.Thread(target=_warm, name="warm-start", daemon=True).start()


def _wanted() -> bool:
    from classifier.config import SettingsError, get_settings

    try:
        return get_settings().warm_start
    except SettingsError:  # the pages say what is wrong with the setting
        log.debug("No warm start: a setting is wrong", exc_info=True)
        return False


def _warm() -> None:
    try:
        import pyarrow  # noqa: F401  Streamlit's tables and charts send their data with it

        from classifier.config import SettingsError
        from ui import results, saving, sidebar, uploads  # noqa: F401  the Classify page's

        name = _engine_to_open()
        if name is not None:
            _open_and_run(name)
    except SettingsError:  # the pages say what is wrong with the setting
        log.debug("No warm start: a setting is wrong", exc_info=True)
    except Exception:
        log.warning("The server could not warm up; its first visit will", exc_info=True)
    finally:
        from ui import resources

        gc.collect()
        resources.give_back_freed_memory()


def _engine_to_open() -> str | None:
    """Return the default model's name if its engine can be opened with nothing to say."""
    from classifier import models
    from classifier.config import get_settings

    name = get_settings().default_model
    if models.is_loaded(name) or not models.opens_quietly(name):
        return None
    return name


def _open_and_run(name: str) -> None:
    """Open a built-in model's cached engine and run it once on a small grey picture."""
    from PIL import Image

    from classifier import models
    from classifier.predict import classify

    loaded = models.load(name, in_child=True)
    if loaded.cache_notice:  # not expected for a sound engine file; never lost silently
        log.warning("%s", loaded.cache_notice)
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(picture, format="PNG")
    classify(picture.getvalue(), loaded)  # the engine's first run allocates its buffers
