"""What the command line prints and reads, the same here and against a deployment
(`classifier.remote`): the pictures its arguments name, one answer as text, an export
written whole."""

from __future__ import annotations

import sys
from pathlib import Path

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
