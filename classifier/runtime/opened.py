"""Open each thing once per process, whoever asks: engines, exported files.

    engines = OpenOnce()
    engine = engines.get(key, lambda: LiteRTEngine(path, 2))

Callers asking for the same key while it opens wait for it; callers asking for other
keys do not (one lock per key). A key that failed to open is tried again next time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class OpenOnce(Generic[T]):
    """What this process has opened, by key."""

    def __init__(self) -> None:
        self._opened: dict[Hashable, T] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._forgotten: dict[Hashable, int] = {}  # how often each key was forgotten
        self._lock = threading.Lock()  # held briefly; a slow open holds only its key's lock

    def get(self, key: Hashable, open_it: Callable[[], T]) -> tuple[T, bool]:
        """Return what `key` opened to, opening it with `open_it` if nobody has yet, and
        whether this call opened it."""
        with self._lock:
            if key in self._opened:
                return self._opened[key], False
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._opened:
                    return self._opened[key], False
                forgotten = self._forgotten.get(key, 0)
            opened = open_it()
            with self._lock:
                if self._forgotten.get(key, 0) == forgotten:  # not forgotten while it opened
                    self._opened[key] = opened
            return opened, True

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._opened

    def forget(self, which: Callable[[Hashable], bool]) -> None:
        """Drop what the keys `which` accepts opened to (the next `get` opens it anew)."""
        with self._lock:
            for key in [key for key in self._opened.keys() | self._locks.keys() if which(key)]:
                self._opened.pop(key, None)
                self._forgotten[key] = self._forgotten.get(key, 0) + 1

    def clear(self) -> None:
        with self._lock:
            self._opened.clear()
