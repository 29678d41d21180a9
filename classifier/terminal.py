"""What the command line prints and reads, the same here and against a deployment
(`classifier.remote`): the pictures its arguments name, one answer as text, an export
written whole; and what it keeps off the terminal (the C++ libraries' log lines) or says
only once (a note, a model's first preparation)."""

from __future__ import annotations

import contextlib
import os
import subprocess
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
# silence them (TF_CPP_MIN_LOG_LEVEL does not reach these): absl's preamble, informational
# and warning lines such as
# "I0000 00:00:1796421908.988117    8339 port.cc:153] oneDNN custom operations are on. ..."
# or older TensorFlow's "2025-01-01 12:00:00.000000: I tensorflow/...cc:44] ...", and the
# error lines of a machine without a GPU ("E0000 ... cuda_platform.cc:52] failed call to
# cuInit: ..."). Other errors (E) and fatal lines (F) reach the terminal.
NATIVE_LOG = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] "
    r"|(?:E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: E )"
    r"\S*(?:cuda|cudnn|cufft|cublas|gpu)\S*:\d+\] "
)

# The filter, a process of its own: it passes on what the pipe brings until every writer
# has closed it, so a crash's last lines (an abort, a fatal check) and what a child process
# writes after the command has ended still reach the terminal.
_FILTER = (
    "import re, sys\n"
    "noise = re.compile(sys.argv[1].encode())\n"
    "for line in sys.stdin.buffer:\n"
    "    if not noise.match(line):\n"
    "        sys.stdout.buffer.write(line)\n"
    "        sys.stdout.buffer.flush()\n"
)


@contextlib.contextmanager
def native_logs_kept_off() -> Iterator[TextIO]:
    """Keep the C++ libraries' log lines (TensorFlow's "oneDNN custom operations are on",
    "failed call to cuInit", absl's "All log messages before absl::InitializeLog()") off the
    terminal while the block runs; yield a stream to the terminal that stays one even while
    TensorFlow's converter points file descriptor 2 elsewhere.

    File descriptor 2, where C++ code writes, becomes a pipe to a small filter process that
    passes every other line on to the terminal; `sys.stderr` writes to the terminal directly
    meanwhile. When `sys.stderr` is not file descriptor 2 (captured, as in tests), or the
    filter cannot start, nothing is filtered.
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
    read_end, write_end = os.pipe()
    try:
        passing = subprocess.Popen(
            [sys.executable, "-I", "-c", _FILTER, NATIVE_LOG],
            stdin=read_end,
            stdout=2,
            stderr=2,
        )
    except OSError:
        os.close(read_end)
        os.close(write_end)
        with os.fdopen(os.dup(2), "w", closefd=True) as terminal:
            yield terminal
        return
    os.close(read_end)
    terminal_fd = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    original = sys.stderr
    terminal = open(  # noqa: SIM115  (closed below)
        terminal_fd, "w", encoding=original.encoding, errors=original.errors, buffering=1
    )
    sys.stderr = terminal
    try:
        yield terminal
    finally:
        terminal.flush()
        sys.stderr = original
        os.dup2(terminal.fileno(), 2)  # this process's end of the pipe closes
        terminal.close()
        # The filter ends once the pipe's last writer has closed it: at once, unless a child
        # process still holds it, whose later lines it passes on after this command ends.
        with contextlib.suppress(subprocess.TimeoutExpired):
            passing.wait(timeout=2)


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
