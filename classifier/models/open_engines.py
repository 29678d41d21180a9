"""This process's engines, by model: each opened once, whichever names ask for it.

Keyed by the model's name and version (an own model kept again under its name is
another version), the cache folder and the thread count.
"""

from __future__ import annotations

from pathlib import Path

from classifier.runtime.engines import Engine
from classifier.runtime.opened import OpenOnce

EngineKey = tuple[str, str, Path, int]
opened: OpenOnce[tuple[Engine, str]] = OpenOnce()  # the engine, and its cache notice


def forget(name: str) -> None:
    """Close this process's engines of a model (an own model that was removed or retrained)."""
    opened.forget(lambda key: key[0] == name)
