"""The one error every layer may raise about a model: `ModelError`, one sentence for a person.

Its family (an unknown name, a refused file, a taken name, a derived file that could
not be made) is in `classifier.models`; the runtime raises it when an engine cannot
run a picture or a child process fails.
"""

from __future__ import annotations


class ModelError(RuntimeError):
    """A model that cannot be found, built, kept or run; the message says why."""


class ModelNameTaken(ModelError):
    """Another model already has this name."""


class ModelChanged(ModelError):
    """The model to be replaced was changed or removed since it was read."""

    @classmethod
    def about(cls, name: str) -> ModelChanged:
        return cls(f"“{name}” was retrained or removed meanwhile, elsewhere; nothing was saved.")
