"""What the command line prints and reads, the same here and against a deployment
(`classifier.remote`): the pictures its arguments name, one answer as text, an export
written whole; and what it keeps off the terminal (the C++ libraries' log lines) or says
only once (a note, a model's first preparation)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from classifier import files, images

STDIN = Path("-")


def find_pictures(arguments: list[str], recursive: bool) -> tuple[list[Path], int]:
    """Expand the FILE arguments: folders into the pictures they hold, `-` kept for stdin.

    Returns:
        The pictures in order, and how many arguments named nothing to classify
        (each said on stderr).
    """
    pictures: list[Path] = []
    missing = 0
    for argument in arguments:
        path = Path(argument)
        if argument == "-" or not path.is_dir():
            pictures.append(path)
            continue
        found = sorted(
            child
            for child in (path.rglob("*") if recursive else path.iterdir())
            if child.is_file() and child.suffix.lower().lstrip(".") in images.ACCEPTED_EXTENSIONS
        )
        if not found:
            hint = "" if recursive else " (add --recursive to search its folders)"
            print(f"{path}: no pictures in this folder{hint}", file=sys.stderr)
            missing += 1
        pictures += found
    return pictures, missing


def answer_text(file: str, title: str, inference_ms: float, ranked: list[tuple[float, str]]) -> str:
    """Return one picture's answer as `predict` prints it: the file, then a line per class."""
    lines = [f"{file}  ({title}, {inference_ms:.1f} ms inference)"]
    lines += [f"  {probability:7.2%}  {label}" for probability, label in ranked]
    return "\n".join(lines)


def write_export(data: bytes, output: Path | None) -> int:
    """Write an export to the file named (whole or not at all) or to standard output."""
    if not output:
        sys.stdout.buffer.write(data)
        return 0
    try:  # all or nothing: a full disk leaves the previous file as it was
        files.write_atomically(output, data)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


# The C++ libraries' log lines, which they write to file descriptor 2 before any setting can
# silence them (TF_CPP_MIN_LOG_LEVEL does not reach these): absl's preamble, and lines such as
# "I0000 00:00:1796421908.988117    8339 port.cc:153] oneDNN custom operations are on. ..."
# or "E0000 00:00:1796421913.793233 8339 cuda_platform.cc:52] failed call to cuInit: ...", and
# older TensorFlow's "2025-01-01 12:00:00.000000: I tensorflow/...cc:44] ...". Fatal ones (F),
# which end the process, still reach the terminal.
_NATIVE_LOG = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] "
)


@contextlib.contextmanager
def native_logs_kept_off() -> Iterator[TextIO]:
    """Keep the C++ libraries' log lines (TensorFlow's "oneDNN custom operations are on",
    "failed call to cuInit", absl's "All log messages before absl::InitializeLog()") off the
    terminal while the block runs; yield a stream to the terminal that stays one even while
    TensorFlow's converter points file descriptor 2 elsewhere.

    File descriptor 2, where C++ code writes, becomes a pipe whose lines are passed on to the
    terminal unless they are such log lines; `sys.stderr` writes to the terminal directly
    meanwhile. When `sys.stderr` is not file descriptor 2 (captured, as in tests), nothing
    is filtered.
    """
    try:
        direct = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        direct = False
    if not direct:
        with os.fdopen(os.dup(2), "w", closefd=True) as terminal:
            yield terminal
        return
    sys.stderr.flush()
    terminal_fd = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    passing = threading.Thread(
        target=_pass_on, args=(read_end, terminal_fd), name="stderr filter", daemon=True
    )
    passing.start()
    original = sys.stderr
    terminal = open(  # noqa: SIM115  (closed below, after the filter has finished)
        os.dup(terminal_fd), "w", encoding=original.encoding, errors=original.errors, buffering=1
    )
    sys.stderr = terminal
    try:
        yield terminal
    finally:
        terminal.flush()
        sys.stderr = original
        os.dup2(terminal_fd, 2)  # the pipe's last writer closes: the filter passes the rest on
        passing.join(timeout=2)  # (a child process still holding the pipe is not waited for)
        terminal.close()


def _pass_on(read_end: int, terminal_fd: int) -> None:
    """Copy the pipe's lines to the terminal, leaving out the native log lines."""
    with open(read_end, "rb") as pipe, open(terminal_fd, "wb", buffering=0) as out:
        for line in pipe:
            if _NATIVE_LOG.match(line):
                continue
            with contextlib.suppress(OSError):  # a closed terminal: nothing to tell
                out.write(line)


def say_once(note: str, folder: Path | None) -> None:
    """Print a note on stderr unless it was said before with this cache folder, where it is
    remembered (a file named by its digest); every time when there is no folder to keep it."""
    said = folder / "said" / f"{files.sha256_of(note.encode())[:16]}.txt" if folder else None
    if said is not None and said.is_file():
        return
    print(f"note: {note}", file=sys.stderr)
    if said is not None:
        with contextlib.suppress(OSError):  # not remembered: said again next time
            said.parent.mkdir(parents=True, exist_ok=True)
            files.write_atomically(said, note.encode() + b"\n")


class Preparation:
    """A model's first run here, said on stderr: that it is being prepared, each step with
    the seconds going by (redrawn on a terminal), and how long it took once it is ready."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        print(f"Preparing {title} for this machine (first run only)…", file=sys.stderr)

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Say what is being done; on a terminal, redraw the seconds so far every second."""
        if not sys.stderr.isatty():
            print(f"  {what}…", file=sys.stderr)
            yield
            return
        stop = threading.Event()

        def draw() -> None:
            seconds = time.monotonic() - self.started
            sys.stderr.write(f"\r  {what}… {seconds:.0f} s")
            sys.stderr.flush()

        def tick() -> None:
            draw()
            while not stop.wait(1.0):
                draw()

        ticking = threading.Thread(target=tick, name="preparation", daemon=True)
        ticking.start()
        try:
            yield
        finally:
            stop.set()
            ticking.join()
            sys.stderr.write("\n")
            sys.stderr.flush()

    def ready(self) -> None:
        seconds = time.monotonic() - self.started
        print(f"{self.title} ready in {seconds:.0f} s; later runs start at once", file=sys.stderr)
