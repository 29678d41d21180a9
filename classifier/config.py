"""Settings: defaults, overridden by environment variables and Streamlit's secrets file.

Read once per process and cached: `get_settings()` everywhere, `reset_settings()` in
tests that change the environment. A mistyped value raises `SettingsError` naming the
variable, so the app and the CLI can say which one is wrong.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "image-classifier-dashboard"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Sizes in decimal units, as the page says them (`images.size_text`): 20 MB, 100 MB, 2 GB.
DEFAULT_MAX_BYTES = 20_000_000
DEFAULT_MAX_MODEL_BYTES = 100_000_000
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MODEL = "mobilenet_v2"
DEFAULT_TEACH_MAX_PHOTOS = 2000
DEFAULT_API_QUEUE = 32
DEFAULT_BATCH_MAX_PICTURES = 10_000
DEFAULT_BATCH_MAX_BYTES = 2_000_000_000  # a batch job's pictures together
MAX_API_CONCURRENCY = 64
MAX_THREADS = 64
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
# Whose history a visitor sees: only their own (sign-in required to save), everyone's, none.
HISTORY_MODES = ("private", "shared", "off")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class Settings:
    """Everything the library reads from its environment."""

    max_bytes: int
    max_pixels: int
    cache_dir: Path
    data_dir: Path
    database_url: str
    default_model: str
    num_threads: int
    offline: bool  # never try to download Keras weights
    keras_home: Path  # where Keras caches downloaded weights (its own KERAS_HOME)
    allow_model_uploads: bool = True  # visitors may add (and teach) models
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES  # the largest model file (or zip member)
    teach_max_photos: int = DEFAULT_TEACH_MAX_PHOTOS  # the most photos one model is taught from
    # "private", "shared" or "off"; None: private where sign-in is configured, else shared.
    history_mode: str | None = None
    # Who sees every history: verified emails, or owner ids ("issuer subject").
    admins: tuple[str, ...] = ()
    # Why no history can be opened: a secrets file that cannot be read, or that means to
    # name the database and does not. Nothing then falls back to another database.
    history_problem: str | None = None
    api_enabled: bool = True  # the HTTP API under /api/ (CLASSIFIER_API)
    # Pictures the API classifies at once in this process, and how many more requests may
    # wait for their turn before the API answers 503 (busy).
    api_concurrency: int = 2
    api_queue: int = DEFAULT_API_QUEUE
    # The most pictures one batch job takes, and their bytes together (a zip, unpacked).
    batch_max_pictures: int = DEFAULT_BATCH_MAX_PICTURES
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    # Keep a reduced copy of each saved photo to teach from, beside its thumbnail: the
    # default of the Classify page's "Keep photos to teach from" and of the API's `photo`.
    keep_photos: bool = False
    # Open the default model and import the pages as the server starts (`ui.warm_start`):
    # off, a server holds neither until its first visit asks (CLASSIFIER_WARM_START).
    warm_start: bool = True

    def history_url(self) -> str:
        """Return the history database's URL.

        Raises:
            SettingsError: the secrets meant to name the database, and cannot be used.
        """
        if self.history_problem is not None:
            raise SettingsError(self.history_problem)
        return self.database_url


def secrets_files(cwd: Path | None = None) -> tuple[Path, ...]:
    """Return where Streamlit looks for secrets, lowest precedence first.

    The user's global file, then the project's, then the working directory's (where
    `streamlit run` was called), so the CLI finds the app's secrets from anywhere.
    """
    cwd = cwd or Path.cwd()
    folders = (Path.home(), PROJECT_ROOT, cwd)
    return tuple(dict.fromkeys(folder / ".streamlit" / "secrets.toml" for folder in folders))


def secrets_database_url(files: tuple[Path, ...] | None = None) -> tuple[str | None, list[str]]:
    """Return `[connections.history] url` from the secrets files (the last one that sets it).

    Returns:
        The URL or None, and a sentence for each file that cannot be read or looks meant
        to set it but cannot be used (bad TOML, `connections.history` not a table): the
        history is then closed, since another database would lose or expose a deployed one.
    """
    url, problems = None, []
    fallback = "no history is shown or saved until it is fixed"
    for path in files if files is not None else secrets_files():
        if not path.is_file():
            continue
        try:
            secrets = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            problems.append(f"The secrets file {path} cannot be read ({reason}); {fallback}.")
            continue
        connections = secrets.get("connections", {})
        value = connections.get("history") if isinstance(connections, Mapping) else None
        if value is None:
            continue
        if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
            problems.append(
                f"In the secrets file {path}, expected a table [connections.history] with "
                f'url = "postgresql://..."; {fallback}.'
            )
            continue
        url = value["url"]
    return url, problems


def _int(environ: Mapping[str, str], name: str, default: int, maximum: int | None = None) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii():  # int() also reads full-width and Arabic-Indic digits
        raise SettingsError(
            "Expected an integer written with the digits 0-9 in the environment variable "
            f"{name}. Received: {raw!r}"
        )
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"Expected an integer in the environment variable {name}. Received: {raw!r}"
        ) from None
    if value <= 0 or (maximum is not None and value > maximum):
        bound = f" at most {maximum:,}" if maximum is not None else ""
        raise SettingsError(
            f"Expected a positive integer{bound} in the environment variable {name}. "
            f"Received: {value}"
        )
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(
        f"Expected 1 or 0 (true or false) in the environment variable {name}. Received: {raw!r}"
    )


def _history_mode(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("CLASSIFIER_HISTORY_MODE", "").strip().lower()
    if not raw:
        return None
    if raw not in HISTORY_MODES:
        raise SettingsError(
            "Expected private, shared or off in the environment variable "
            f"CLASSIFIER_HISTORY_MODE. Received: {raw!r}"
        )
    return raw


def _keras_home(environ: Mapping[str, str]) -> Path:
    """Return the folder Keras caches into, as Keras itself computes it."""
    if environ.get("KERAS_HOME"):
        return Path(environ["KERAS_HOME"])
    base = os.path.expanduser("~")
    return Path(base if os.access(base, os.W_OK) else "/tmp") / ".keras"


def read_settings(
    environ: Mapping[str, str] | None = None, secrets: tuple[Path, ...] | None = None
) -> Settings:
    """Read and validate the settings (no caching: `get_settings` caches this).

    Raises:
        SettingsError: a variable holds a value that cannot be used.
    """
    environ = os.environ if environ is None else environ
    data_dir = Path(environ.get("CLASSIFIER_DATA_DIR") or PROJECT_ROOT / "data")
    database_url = environ.get("CLASSIFIER_DATABASE_URL")
    problems: list[str] = []
    if not database_url:
        database_url, problems = secrets_database_url(secrets)
    database_url = database_url or f"sqlite:///{data_dir / 'history.db'}"
    return Settings(
        max_bytes=_int(environ, "CLASSIFIER_MAX_BYTES", DEFAULT_MAX_BYTES),
        max_pixels=_int(environ, "CLASSIFIER_MAX_PIXELS", DEFAULT_MAX_PIXELS),
        cache_dir=Path(
            environ.get("CLASSIFIER_CACHE_DIR") or platformdirs.user_cache_dir(APP_NAME)
        ),
        data_dir=data_dir,
        database_url=database_url,
        default_model=environ.get("CLASSIFIER_MODEL", "").strip() or DEFAULT_MODEL,
        num_threads=_int(
            environ, "CLASSIFIER_THREADS", min(4, os.cpu_count() or 1), maximum=MAX_THREADS
        ),
        offline=_bool(environ, "CLASSIFIER_OFFLINE", False),
        keras_home=_keras_home(environ),
        allow_model_uploads=_bool(environ, "CLASSIFIER_ALLOW_MODEL_UPLOADS", True),
        max_model_bytes=_int(environ, "CLASSIFIER_MAX_MODEL_BYTES", DEFAULT_MAX_MODEL_BYTES),
        teach_max_photos=_int(environ, "CLASSIFIER_TEACH_MAX_PHOTOS", DEFAULT_TEACH_MAX_PHOTOS),
        history_mode=_history_mode(environ),
        admins=tuple(
            entry.strip()
            for entry in environ.get("CLASSIFIER_ADMINS", "").split(",")
            if entry.strip()
        ),
        history_problem=problems[0] if problems else None,
        api_enabled=_bool(environ, "CLASSIFIER_API", True),
        api_concurrency=_int(
            environ,
            "CLASSIFIER_API_CONCURRENCY",
            min(2, os.cpu_count() or 1),
            maximum=MAX_API_CONCURRENCY,
        ),
        api_queue=_int(environ, "CLASSIFIER_API_QUEUE", DEFAULT_API_QUEUE, maximum=10_000),
        batch_max_pictures=_int(
            environ, "CLASSIFIER_BATCH_MAX_PICTURES", DEFAULT_BATCH_MAX_PICTURES, maximum=10**7
        ),
        batch_max_bytes=_int(environ, "CLASSIFIER_BATCH_MAX_BYTES", DEFAULT_BATCH_MAX_BYTES),
        keep_photos=_bool(environ, "CLASSIFIER_KEEP_PHOTOS", False),
        warm_start=_bool(environ, "CLASSIFIER_WARM_START", True),
    )


_settings: Settings | None = None
_lock = threading.Lock()


def get_settings() -> Settings:
    """Return the process's settings, read on first use.

    Raises:
        SettingsError: a variable holds a value that cannot be used.
    """
    global _settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = read_settings()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings, so the next `get_settings` reads the environment again."""
    global _settings
    with _lock:
        _settings = None
