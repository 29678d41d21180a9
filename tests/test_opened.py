"""Open once per process: one open per key, waiting callers share it, forgetting works."""

from __future__ import annotations

import threading

from classifier.runtime.opened import OpenOnce


def test_callers_of_one_key_share_one_open_and_other_keys_do_not_wait():
    opened: OpenOnce[object] = OpenOnce()
    started, release, calls = threading.Event(), threading.Event(), []

    def slow_open():
        calls.append("a")
        started.set()
        release.wait(5)
        return object()

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(opened.get("a", slow_open)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    started.wait(5)
    other, first = opened.get("b", lambda: "b engine")  # not held up by "a"
    assert (other, first) == ("b engine", True)
    release.set()
    for thread in threads:
        thread.join()
    assert calls == ["a"]
    assert len({id(value) for value, _ in results}) == 1
    assert sorted(first for _, first in results) == [False, False, True]


def test_what_is_forgotten_while_it_opens_is_not_kept():
    opened: OpenOnce[str] = OpenOnce()

    def open_and_be_forgotten() -> str:
        opened.forget(lambda key: key == "model")  # removed while it was opening
        return "old engine"

    assert opened.get("model", open_and_be_forgotten) == ("old engine", True)
    assert "model" not in opened
    assert opened.get("model", lambda: "new engine") == ("new engine", True)
    opened.forget(lambda key: key == "model")
    assert "model" not in opened
