"""Child processes: work that must not run in the server (TensorFlow, someone's file),
run within limits of memory, processor time and wall time.

The child prints one JSON line last, its report. It leads a process group of its own,
so whatever it starts is stopped with it; its resident memory is watched every 20 ms and
the group is killed past the limit; it stops itself past its processor time
(RLIMIT_CPU, from CLASSIFIER_CHILD_CPU_SECONDS). Every way it can fail is one sentence
(`ChildFailed`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from classifier.errors import ModelError

log = logging.getLogger(__name__)


class ChildFailed(ModelError):
    """A child process refused its input, failed or was stopped; the message says why."""


@dataclass(frozen=True)
class ChildLimits:
    """What one child process may spend before it is stopped."""

    memory_mb: int  # resident memory, watched while it runs
    cpu_seconds: int  # processor time (RLIMIT_CPU, set by the child on itself)
    wall_seconds: int


WATCH_SECONDS = 0.02  # how often a child's memory is looked at
# Children that import TensorFlow (~700 MB each) run one at a time; light children
# (checking a LiteRT file, ~40 MB) have a lock of their own, so a slow check of someone's
# file never holds up the app's exports.
_light = threading.Lock()
_heavy = threading.Lock()


def run_child(
    module: str, arguments: list[str], limits: ChildLimits, *, light: bool = False
) -> dict[str, Any]:
    """Run `python -m MODULE ARGUMENTS` in a child process, within its limits; return the
    report it prints as its last line (a JSON object with "ok" and, if not, "message").

    Raises:
        ChildFailed: the child refused its input, failed, or went past a limit (one sentence).
    """
    environment = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="-1",
        CLASSIFIER_CHILD_CPU_SECONDS=str(limits.cpu_seconds),
    )
    # Lower priority, so visitors' pages keep answering while a model converts.
    nice = [path, "-n", "10"] if (path := shutil.which("nice")) else []
    command = [*nice, sys.executable, "-m", module, *arguments]
    with _light if light else _heavy:
        finished = _watched(command, environment, limits)
    lines = finished.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    reported = report.get("peak_mb", 0) if isinstance(report, dict) else 0
    what = " ".join([module, *arguments[:1]])
    log.info(
        "%s: %s, peak %d MB, %.1f s of processor time",
        what, finished.outcome, max(finished.peak_mb, int(reported)), finished.cpu_seconds,
    )  # fmt: skip
    if finished.outcome == "memory":
        raise ChildFailed(
            f"Reading this model needed more than {limits.memory_mb:,} MB of memory; it was "
            "stopped."
        )
    if finished.outcome == "time":
        raise ChildFailed(
            f"Reading this model took longer than {_duration(limits.wall_seconds)}; it was stopped."
        )
    if finished.returncode == -signal.SIGXCPU or (
        finished.returncode == -signal.SIGKILL and finished.cpu_seconds >= limits.cpu_seconds
    ):
        raise ChildFailed(
            f"Reading this model took more than {_duration(limits.cpu_seconds)} of processor "
            "time; it was stopped."
        )
    if finished.returncode == -signal.SIGKILL:
        raise ChildFailed(
            "Reading this model was stopped by the system, perhaps for want of memory."
        )
    if not isinstance(report, dict):
        # The child died (a crafted file can crash a parser) or printed nothing useful.
        raise ChildFailed(
            "This file could not be opened as a model: the program reading it stopped "
            f"(exit status {finished.returncode})."
        )
    if not report.get("ok"):
        log.info("%s said: %s", what, finished.stderr_tail.strip())
        raise ChildFailed(str(report.get("message", "This model cannot be added.")))
    return report


def _duration(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


@dataclass(frozen=True)
class _Finished:
    returncode: int
    stdout: str
    stderr_tail: str  # the end of what it said on stderr: for the server log
    outcome: str  # "exited", or the limit it was stopped at: "memory", "time"
    peak_mb: int  # its peak resident memory, as seen while watching it
    cpu_seconds: float


def _watched(command: list[str], environment: dict[str, str], limits: ChildLimits) -> _Finished:
    """Run a child while a thread watches its memory and time, and stops it past a limit.

    The child leads a process group of its own, so whatever it starts is stopped with it;
    its output is read in chunks, and only its end is kept.
    """
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    output, errors = _Tail(MAX_REPORT_BYTES), _Tail(2000)
    readers = [
        threading.Thread(target=output.read_all, args=(process.stdout,), daemon=True),
        threading.Thread(target=errors.read_all, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    stopped: list[str] = []
    seen = [0]  # the most resident memory seen
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + limits.wall_seconds
        while not done.wait(WATCH_SECONDS):
            seen[0] = max(seen[0], _resident_mb(process.pid))
            if seen[0] > limits.memory_mb:
                stopped.append("memory")
            elif time.monotonic() > deadline:
                stopped.append("time")
            else:
                continue
            _kill_group(process.pid)  # never Popen.kill: its poll() could reap the child
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # wait4 reaps the child with its own processor time. (Its ru_maxrss would include the
    # server's memory, shared from the fork until the child runs Python: the child reports
    # its own peak instead.)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    watcher.join()
    _kill_group(process.pid)  # anything it started, which would hold its output open
    for reader in readers:
        reader.join(timeout=5)
    return _Finished(
        process.returncode,
        output.text(),
        errors.text(),
        stopped[0] if stopped else "exited",
        seen[0],
        usage.ru_utime + usage.ru_stime,
    )


MAX_REPORT_BYTES = 1024 * 1024  # the end of a child's output kept: its report is one line


class _Tail:
    """The last bytes of a stream, read a chunk at a time."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.data = b""

    def read_all(self, stream) -> None:
        while chunk := stream.read1(64 * 1024):
            self.data = (self.data + chunk)[-self.keep :]
        stream.close()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing of it is left
        os.killpg(pid, signal.SIGKILL)


def _resident_mb(pid: int) -> int:
    """Return a process's resident memory in MB (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024**2
