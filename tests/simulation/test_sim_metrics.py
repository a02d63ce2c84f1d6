import json
import math
import random

import numpy as np
import pytest

from dispatch.simulation.metrics import MetricsRecorder, percentile


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_percentiles_match_numpy(size):
    rng = random.Random(size)
    values = [rng.lognormvariate(-3, 1) for _ in range(size)]
    for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_of_nothing_is_nan_and_bad_q_is_refused():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_statistics_match_numpy():
    clock = FakeClock()
    metrics = MetricsRecorder(clock=clock)
    rng = np.random.default_rng(5)
    latencies = rng.gamma(2.0, 0.02, size=500)
    for value in latencies:
        clock.t += 0.01
        metrics.record("estimate", float(value))
    metrics.record("estimate", 9.0, ok=False)
    summary = metrics.summary("estimate")
    assert summary.count == 500 and summary.errors == 1
    assert summary.mean_s == pytest.approx(latencies.mean())
    for name, q in (("p50_s", 50), ("p95_s", 95), ("p99_s", 99)):
        assert getattr(summary, name) == pytest.approx(np.percentile(latencies, q))
    assert summary.max_s == pytest.approx(latencies.max())
    assert metrics.counters["estimate.errors"] == 1


def test_timer_and_record_since_use_the_clock():
    clock = FakeClock()
    metrics = MetricsRecorder(clock=clock)
    with metrics.timer("request"):
        clock.t += 0.25
    started = metrics.now()
    clock.t += 0.5
    assert metrics.record_since("request_to_offer", started) == pytest.approx(0.5)
    with pytest.raises(RuntimeError), metrics.timer("request"):
        clock.t += 1
        raise RuntimeError("boom")
    request = metrics.samples("request")
    assert [s.latency_s for s in request] == pytest.approx([0.25, 1.0])
    assert [s.ok for s in request] == [True, False]
    assert request[0].at_s == pytest.approx(0.25)
    assert metrics.steps() == ["request", "request_to_offer"]


def test_throughput_per_second_counts_every_bucket():
    metrics = MetricsRecorder(clock=FakeClock())
    for at in (0.1, 0.2, 0.9, 2.5, 2.6):
        metrics.record("location_ack", 0.01, at_s=at)
    metrics.record("estimate", 0.01, at_s=1.5)
    assert metrics.throughput("location_ack") == [(0.0, 3.0), (1.0, 0.0), (2.0, 2.0)]
    assert metrics.throughput() == [(0.0, 3.0), (1.0, 1.0), (2.0, 2.0)]
    assert metrics.throughput("location_ack", bucket_s=2.0) == [(0.0, 1.5), (2.0, 1.0)]
    assert metrics.throughput("nothing") == []


def test_json_export_round_trips(tmp_path):
    metrics = MetricsRecorder(clock=FakeClock())
    metrics.record("estimate", 0.02, at_s=0.5)
    metrics.record("broken", 1.0, ok=False, at_s=0.7)
    metrics.incr("trips.completed", 3)
    path = metrics.write_json(tmp_path / "out" / "metrics.json")
    data = json.loads(path.read_text())
    assert data["counters"] == {"broken.errors": 1, "trips.completed": 3}
    assert data["steps"]["estimate"]["p95_s"] == pytest.approx(0.02)
    assert data["steps"]["broken"]["p95_s"] is None  # NaN is not JSON
    assert data["samples"][0] == ["estimate", 0.5, 0.02, True]
    assert data["duration_s"] == pytest.approx(0.7)


def test_negative_latency_is_refused():
    with pytest.raises(ValueError):
        MetricsRecorder().record("estimate", -0.1)
