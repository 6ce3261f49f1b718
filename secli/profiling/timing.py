"""Timing primitives: summary statistics and per-device stopwatches.

Why two stopwatches: on a CPU the host clock around a region is exact, because every op has
finished when the call returns. On a GPU the host only queues work, so a host clock measures
the queueing; CUDA events are recorded into the stream instead and read back only after one
synchronize at the end of the whole loop, so the measured loop itself never waits on the host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

#: IQR / median above which a measurement is flagged as noisy.
NOISY_RELATIVE_IQR = 0.10


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method), q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Stats:
    """Median and interquartile range of repeated timings, in milliseconds.

    Median and IQR rather than mean and standard deviation: a few iterations disturbed by
    another process would drag a mean, but barely move these.
    """

    median_ms: float
    q1_ms: float
    q3_ms: float
    n: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @property
    def relative_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.relative_iqr > NOISY_RELATIVE_IQR

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stats:
        return cls(
            median_ms=percentile(samples_ms, 50),
            q1_ms=percentile(samples_ms, 25),
            q3_ms=percentile(samples_ms, 75),
            n=len(samples_ms),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr_ms": self.iqr_ms, "relative_iqr": self.relative_iqr}


class Stopwatch(Protocol):
    """Marks points in time during a loop; ``elapsed_ms`` is read once the loop is over."""

    def mark(self) -> Any: ...

    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    def finish(self) -> None: ...


class HostStopwatch:
    """``time.perf_counter`` marks: right for CPU work, which is synchronous."""

    def mark(self) -> float:
        return time.perf_counter()

    def elapsed_ms(self, start: float, end: float) -> float:
        return (end - start) * 1e3

    def finish(self) -> None:
        return None


class CudaStopwatch:
    """CUDA events recorded on the current stream; one synchronize in ``finish``."""

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self.device = device

    def mark(self) -> Any:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end))

    def finish(self) -> None:
        self._torch.cuda.synchronize(self.device)


def stopwatch_for(device: Any) -> Stopwatch:
    return CudaStopwatch(device) if getattr(device, "type", str(device)) == "cuda" else HostStopwatch()


def median_time_ms(fn: Callable[[], object], repeats: int, watch: Stopwatch) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, read after a single finish()."""
    marks = []
    for _ in range(repeats):
        start = watch.mark()
        fn()
        marks.append((start, watch.mark()))
    watch.finish()
    return percentile([watch.elapsed_ms(a, b) for a, b in marks], 50)
