"""Repeated timings and their summary statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Samples of one measurement, in the unit of the row that shows them."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Iterable[float], scale: float = 1.0) -> Stats:
        """Summarise samples, each multiplied by `scale` (1000 turns seconds into ms)."""
        values = tuple(float(value) * scale for value in samples)
        if not values:
            raise ValueError("Expected at least one sample. Received: none.")
        return cls(values)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.samples, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.samples, 75))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)


def seconds(call: Callable[[], object]) -> float:
    """Return how long one call takes, in seconds."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def compare(
    contenders: Mapping[str, Callable[[], object]], *, rounds: int, calls: int, warmup: int = 2
) -> dict[str, Stats]:
    """Time each contender in turns and return milliseconds per call.

    Each round gives every contender `warmup` untimed calls, then `calls` timed
    ones. Several short rounds instead of one long run each means a slow patch
    of the shared machine falls on all contenders alike, so their ratio holds.
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            for _ in range(warmup):
                call()
            samples[name].extend(seconds(call) for _ in range(calls))
    return {name: Stats.of(values, scale=1000) for name, values in samples.items()}
