"""The rows of the results table, rendered as markdown (for people) and JSON (for tests)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.timing import Stats

_STARTED = time.perf_counter()


@dataclass(frozen=True)
class Row:
    """One measurement, optionally compared with a baseline row and checked against a target.

    `ratio` is this row's median divided by the baseline's median, in the row's unit.
    """

    group: str
    name: str
    unit: str
    stats: Stats
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


def ratio(stats: Stats, baseline: Stats) -> float:
    """Return the ratio of two medians."""
    return stats.median / baseline.median


def say(message: str) -> None:
    """Tell the person running the benchmark what is happening (stderr: stdout is the table)."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def number(value: float) -> str:
    """Format a value with about three significant digits."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(rows: list[Row]) -> str:
    """Return the rows as a markdown table, followed by the notes and a count of targets met."""
    lines = [
        "| group | measurement | median | IQR | min–max | n | ratio | target | met? |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        s = row.stats
        compared = f"{row.ratio:.2f}× {row.baseline}" if row.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        lines.append(
            f"| {row.group} | {row.name} | {number(s.median)} {row.unit} "
            f"| {number(s.q1)}–{number(s.q3)} | {number(s.minimum)}–{number(s.maximum)} "
            f"| {len(s.samples)} | {compared} | {row.target} | {met} |"
        )
    notes = [f"- {row.group} · {row.name}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    checked = [row.met for row in rows if row.met is not None]
    lines += ["", f"Targets met: {sum(checked)} of {len(checked)}."]
    return "\n".join(lines)


def write_json(rows: list[Row], path: Path) -> None:
    """Write the rows, with their summary statistics, to a JSON file."""
    entries = [
        {
            "group": row.group,
            "name": row.name,
            "unit": row.unit,
            "median": row.stats.median,
            "q1": row.stats.q1,
            "q3": row.stats.q3,
            "min": row.stats.minimum,
            "max": row.stats.maximum,
            "n": len(row.stats.samples),
            "baseline": row.baseline,
            "ratio": row.ratio,
            "target": row.target,
            "met": row.met,
            "note": row.note,
        }
        for row in rows
    ]
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
