"""Settings with defaults, each overridable by an environment variable."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "image-classifier-dashboard"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MODEL = "mobilenet_v2"


@dataclass(frozen=True)
class Settings:
    """Everything the library reads from its environment, resolved once per call."""

    max_bytes: int
    max_pixels: int
    cache_dir: Path
    data_dir: Path
    database_url: str
    default_model: str
    num_threads: int


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"Expected an integer in the environment variable {name}. Received: {raw!r}"
        ) from None
    if value <= 0:
        raise ValueError(
            f"Expected a positive integer in the environment variable {name}. Received: {value}"
        )
    return value


def secrets_database_url() -> str | None:
    """Return `[connections.history] url` from the project's `.streamlit/secrets.toml`, if set.

    The app reads the same value through `st.secrets`; this lets the command line
    use the same database without Streamlit.
    """
    for folder in dict.fromkeys((Path.cwd(), PROJECT_ROOT)):
        path = folder / ".streamlit" / "secrets.toml"
        if path.is_file():
            try:
                return tomllib.loads(path.read_text(encoding="utf-8"))["connections"]["history"][
                    "url"
                ]
            except (KeyError, TypeError, tomllib.TOMLDecodeError):
                return None
    return None


def get_settings() -> Settings:
    """Read the settings from the environment, falling back to the defaults."""
    data_dir = Path(os.environ.get("CLASSIFIER_DATA_DIR") or PROJECT_ROOT / "data")
    cache_dir = Path(
        os.environ.get("CLASSIFIER_CACHE_DIR") or platformdirs.user_cache_dir(APP_NAME)
    )
    database_url = (
        os.environ.get("CLASSIFIER_DATABASE_URL")
        or secrets_database_url()
        or f"sqlite:///{data_dir / 'history.db'}"
    )
    return Settings(
        max_bytes=_int_env("CLASSIFIER_MAX_BYTES", DEFAULT_MAX_BYTES),
        max_pixels=_int_env("CLASSIFIER_MAX_PIXELS", DEFAULT_MAX_PIXELS),
        cache_dir=cache_dir,
        data_dir=data_dir,
        database_url=database_url,
        default_model=os.environ.get("CLASSIFIER_MODEL") or DEFAULT_MODEL,
        num_threads=_int_env("CLASSIFIER_THREADS", min(4, os.cpu_count() or 1)),
    )
