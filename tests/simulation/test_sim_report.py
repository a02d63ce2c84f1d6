import json
import random

import pytest
from rich.console import Console

from dispatch.simulation.metrics import MetricsRecorder
from dispatch.simulation.report import PayRecord, SimulationSummary, print_report, write_load_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample_metrics() -> MetricsRecorder:
    metrics = MetricsRecorder()
    rng = random.Random(1)
    for k in range(600):
        at = k * 0.05
        metrics.record("estimate", rng.uniform(0.005, 0.05), at_s=at)
        metrics.record("location_ack", rng.uniform(0.001, 0.01), at_s=at)
        if k % 10 == 0:
            metrics.record("request_to_offer", rng.uniform(0.1, 1.5), at_s=at)
    metrics.incr("trips.completed", 12)
    return metrics


def sample_summary() -> SimulationSummary:
    summary = SimulationSummary(drivers=5, riders=8, simulated_s=3600, trips_requested=20)
    for _ in range(14):
        summary.count_outcome("completed")
    summary.count_outcome("unfulfilled")
    summary.count_outcome("cancelled", "rider")
    summary.count_outcome("cancelled", "driver")
    summary.pickup_eta_quoted_s.extend([120, 240, 300])
    summary.pickup_wait_s.extend([150, 260, 420])
    summary.driver_online_s, summary.driver_engaged_s = 18_000, 9_000
    summary.pay.extend(
        [PayRecord(1500, 1200, 1765, 200, driver_id="d1"), PayRecord(900, 900, 1000, driver_id="d2")]
    )
    summary.driver_online_s_by_id = {"d1": 3600.0, "d2": 3600.0, "d3": 1800.0}
    return summary


def test_summary_counts_and_derived_figures():
    summary = sample_summary()
    assert summary.trips_cancelled == 2 and summary.utilisation == pytest.approx(0.5)
    assert summary.trips_below_floor == 0
    data = summary.to_dict()
    assert data["trips"]["completed"] == 14
    assert data["pay"]["pay_to_floor_ratio"]["min"] == pytest.approx(1.0)
    assert data["pickup_wait_s"]["mean"] == pytest.approx(830 / 3)
    # The monthly figures' Gini: the band is 0.5 to 1.5 hours (the median driver's hour), so all three are in;
    # 1500, 900 and 0 cents an hour (tips left out): pair differences 600 + 1500 + 900 = 3000 over
    # n^2 x mean = 9 x 800, so 3000 / 7200 = 0.417.
    assert data["fairness"] == {
        "hourly_earnings_gini": 0.417,
        "band_hours": {"from": 0.5, "to": 1.5},
        "drivers_online": 3,
        "drivers_included": 3,
    }
    with pytest.raises(ValueError):
        summary.count_outcome("in_progress")


def test_rich_report_shows_every_step_and_the_summary():
    console = Console(record=True, width=140)
    print_report(sample_metrics(), sample_summary(), console=console)
    text = console.export_text()
    for expected in (
        "estimate",
        "location_ack",
        "request_to_offer",
        "driver utilisation",
        "50%",
        "below the floor",
        "hourly earnings Gini, comparable hours",
        "0.417 (3 of 3 drivers online 0.500-1.500 h)",
        "trips.completed",
    ):
        assert expected in text


def test_load_results_json_and_plots(tmp_path):
    files = write_load_results(
        sample_metrics(), tmp_path / "load", summary=sample_summary(), meta={"drivers": 5}
    )
    data = json.loads(files.results_json.read_text())
    assert data["meta"] == {"drivers": 5}
    assert set(data["metrics"]["steps"]) == {"estimate", "location_ack", "request_to_offer"}
    assert data["summary"]["trips"]["requested"] == 20
    for png in (files.latency_png, files.throughput_png):
        content = png.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000


def test_load_results_with_no_samples_still_write(tmp_path):
    files = write_load_results(MetricsRecorder(), tmp_path)
    assert json.loads(files.results_json.read_text())["metrics"]["steps"] == {}
    assert files.latency_png.read_bytes().startswith(PNG_SIGNATURE)
    assert files.throughput_png.stat().st_size > 0
    empty = SimulationSummary()
    assert json.loads(json.dumps(empty.to_dict()))["driver_utilisation"] is None
