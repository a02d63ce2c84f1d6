"""Latency samples by step, counters and throughput, for the simulator and its load mode.

A step is a named thing a client waits for ("estimate", "request", "request_to_offer",
"accept_to_rider_notified", "location_ack", ...). Each sample keeps when it finished (seconds since the
recorder started) so latency and throughput can be drawn over time. Percentiles use linear interpolation
between closest ranks, the same as numpy's default.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolating linearly like numpy.percentile."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencySample:
    step: str
    at_s: float  # when the step finished, seconds since the recorder started
    latency_s: float
    ok: bool


@dataclass(frozen=True, slots=True)
class LatencySummary:
    step: str
    count: int
    errors: int
    mean_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    min_s: float
    max_s: float

    @classmethod
    def of(cls, step: str, samples: Sequence[LatencySample]) -> LatencySummary:
        latencies = [s.latency_s for s in samples if s.ok]
        errors = sum(1 for s in samples if not s.ok)
        if not latencies:
            return cls(step, 0, errors, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            step=step,
            count=len(latencies),
            errors=errors,
            mean_s=sum(latencies) / len(latencies),
            p50_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            p99_s=percentile(latencies, 99),
            min_s=min(latencies),
            max_s=max(latencies),
        )


class MetricsRecorder:
    """Collects latency samples and counters; safe to share between threads and asyncio tasks."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = clock()
        self.started_at = datetime.now(UTC)
        self._samples: list[LatencySample] = []
        self._counters: Counter[str] = Counter()
        self._lock = threading.Lock()

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def now(self) -> float:
        """The recorder's clock, for measuring a step started here and finished elsewhere."""
        return self._clock()

    # -- recording ----------------------------------------------------------------------------------------

    def record(self, step: str, latency_s: float, *, ok: bool = True, at_s: float | None = None) -> None:
        """One sample of `step`; `at_s` (seconds since start) defaults to now. A failed step (ok=False)
        counts as an error and stays out of the percentiles."""
        if latency_s < 0:
            raise ValueError("latency cannot be negative")
        sample = LatencySample(step, self.elapsed_s() if at_s is None else at_s, latency_s, ok)
        with self._lock:
            self._samples.append(sample)
            if not ok:
                self._counters[f"{step}.errors"] += 1

    def record_since(self, step: str, started: float, *, ok: bool = True) -> float:
        """Record the time since `started` (a value of `now()`), and return it."""
        latency = self._clock() - started
        self.record(step, latency, ok=ok)
        return latency

    @contextmanager
    def timer(self, step: str) -> Iterator[None]:
        """Time a block; an exception inside records an error sample and propagates."""
        started = self._clock()
        try:
            yield
        except BaseException:
            self.record_since(step, started, ok=False)
            raise
        self.record_since(step, started)

    def incr(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[counter] += amount

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def steps(self) -> list[str]:
        with self._lock:
            return sorted({s.step for s in self._samples})

    def samples(self, step: str | None = None) -> list[LatencySample]:
        with self._lock:
            return [s for s in self._samples if step is None or s.step == step]

    def summary(self, step: str) -> LatencySummary:
        return LatencySummary.of(step, self.samples(step))

    def summaries(self) -> list[LatencySummary]:
        return [self.summary(step) for step in self.steps()]

    def throughput(self, step: str | None = None, bucket_s: float = 1.0) -> list[tuple[float, float]]:
        """(bucket start, completed samples per second) from time 0 to the last sample, empty buckets too."""
        samples = self.samples(step)
        if not samples:
            return []
        buckets = Counter(int(s.at_s // bucket_s) for s in samples)
        last = max(buckets)
        return [(k * bucket_s, buckets.get(k, 0) / bucket_s) for k in range(last + 1)]

    def to_dict(self, *, include_samples: bool = True) -> dict[str, Any]:
        duration = max((s.at_s for s in self.samples()), default=0.0)
        data: dict[str, Any] = {
            "started_at": self.started_at.isoformat(),
            "duration_s": duration,
            "counters": self.counters,
            "steps": {summary.step: _finite(asdict(summary)) for summary in self.summaries()},
            "throughput_per_s": {
                step: [[t, rate] for t, rate in self.throughput(step)] for step in self.steps()
            },
        }
        if include_samples:
            data["samples"] = [
                [s.step, round(s.at_s, 6), round(s.latency_s, 6), s.ok] for s in self.samples()
            ]
        return data

    def write_json(self, path: Path | str, *, include_samples: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(include_samples=include_samples), indent=2) + "\n")
        return path


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: an empty summary's statistics become null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
