"""What a simulation run says at the end: a `rich` summary for the terminal, and for the load mode a
results JSON plus PNG plots of latency and throughput over time.

Plots use matplotlib's object API with the Agg canvas (no pyplot, no global backend, no display).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from dispatch.matching.fairness_figures import DriverTime, HourlyEarningsGini, hourly_earnings_gini, rounded
from dispatch.simulation.metrics import MetricsRecorder, percentile


@dataclass(frozen=True, slots=True)
class PayRecord:
    """A completed trip's pay against the board's floor for it (cents)."""

    driver_pay_cents: int
    floor_cents: int
    fare_cents: int
    tip_cents: int = 0
    driver_id: str = ""  # the server's id of the driver who drove it (the trip object's driver.id)

    @property
    def meets_floor(self) -> bool:
        return self.driver_pay_cents >= self.floor_cents


BOOKERS = ("rider", "organisation")  # who booked a ride ahead: a rider's app, or an organisation's system


def _instant(value: object) -> datetime | None:
    """A wire timestamp (ISO 8601, `Z` or an offset) as an aware datetime; None when absent or garbled."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _amount(money_value: object) -> int:
    return int(money_value.get("amount") or 0) if isinstance(money_value, dict) else 0


@dataclass
class BookedAhead:
    """A ride booked ahead (docs/scheduling.md), by a simulated rider or the organisation's system, as its
    trip objects showed it: how it left `scheduled` (released into dispatch, or set off to the driver who
    claimed it), whether the car reached the pickup inside the window, and what it billed."""

    trip_id: str
    booker: str  # one of BOOKERS
    status: str = "scheduled"
    claimed: bool = False  # a driver claimed it at some point (the trip's reservation.claimed, or our claim)
    left_scheduled_as: str | None = None  # "dispatched" (scheduled -> requested), "set_off" (-> assigned)
    window_start: datetime | None = None
    window_end: datetime | None = None
    arrived_at: datetime | None = None  # the trip's `arrived` event
    billed_cents: int = 0  # completed: the total (fare + fees); cancelled: the cancellation fee

    def observe(self, trip: dict[str, Any]) -> None:
        """Take what a trip object (a push, a read, the answer to the booking) says about the ride."""
        self.status = str(trip.get("status") or self.status)
        reservation = trip.get("reservation") or {}
        self.claimed = self.claimed or bool(reservation.get("claimed"))
        self.window_start = _instant(reservation.get("window_start")) or self.window_start
        self.window_end = _instant(reservation.get("window_end")) or self.window_end
        statuses = [str(event.get("status")) for event in trip.get("events") or []]
        if "scheduled" in statuses:
            after = statuses[statuses.index("scheduled") + 1 :]
            moves = {"requested": "dispatched", "assigned": "set_off"}  # a cancellation is neither
            if after and after[0] in moves:
                self.left_scheduled_as = moves[after[0]]
        for event in trip.get("events") or []:
            if event.get("status") == "arrived":
                self.arrived_at = _instant(event.get("at")) or self.arrived_at
                break
        if self.status == "completed":
            self.billed_cents = _amount(trip.get("total")) or _amount(trip.get("fare"))
        elif self.status == "cancelled":
            self.billed_cents = _amount(trip.get("cancellation_fee"))

    @property
    def arrival(self) -> str | None:
        """`early`, `in_window` or `late`: where the car's arrival fell against the pickup window."""
        if self.arrived_at is None or self.window_start is None or self.window_end is None:
            return None
        if self.arrived_at < self.window_start:
            return "early"
        return "late" if self.arrived_at > self.window_end else "in_window"


@dataclass
class SimulationSummary:
    """Counts and observations gathered by the simulated apps during a run."""

    drivers: int = 0
    riders: int = 0
    simulated_s: float = 0.0
    trips_requested: int = 0
    trips_completed: int = 0
    trips_unfulfilled: int = 0
    trips_cancelled_by_rider: int = 0
    trips_cancelled_by_driver: int = 0
    trips_cancelled_by_system: int = 0
    trips_open_at_end: int = 0  # still requested or under way when the run stopped
    pickup_eta_quoted_s: list[float] = field(default_factory=list)  # the server's pickup_eta_s
    pickup_wait_s: list[float] = field(default_factory=list)  # request to driver arrived, as lived
    driver_online_s: float = 0.0
    # Each signed-in driver's simulated online seconds, by their server id: with `pay`, their hourly earnings.
    driver_online_s_by_id: dict[str, float] = field(default_factory=dict)
    driver_engaged_s: float = 0.0  # on the way to a pickup or with a rider aboard
    pay: list[PayRecord] = field(default_factory=list)
    cards_saved: int = 0  # riders who saved a card this run because the server asked for one
    payment_refusals: dict[str, int] = field(default_factory=dict)  # 402 code -> trip requests refused
    riders_refused_payment: set[int] = field(default_factory=set)  # riders refused for payment at least once
    booked_ahead: dict[str, BookedAhead] = field(default_factory=dict)  # trip id -> a ride booked ahead
    booking_refusals: dict[str, int] = field(default_factory=dict)  # "booker.code" -> bookings refused
    claims_won: set[str] = field(default_factory=set)  # trip ids simulated drivers claimed
    claim_refusals: dict[str, int] = field(default_factory=dict)  # code -> claims refused
    organisation_name: str = ""

    def observe_booked_ahead(self, trip: dict[str, Any], *, booker: str | None = None) -> None:
        """Record a ride booked ahead (with `booker`, when it is booked) or what became of it (without)."""
        trip_id = str(trip["id"])
        record = self.booked_ahead.get(trip_id)
        if record is None:
            if booker is None:
                return
            if booker not in BOOKERS:
                raise ValueError(f"{booker!r} is not one of {BOOKERS}")
            record = self.booked_ahead[trip_id] = BookedAhead(trip_id, booker)
        record.observe(trip)

    def count_booking_refusal(self, *, booker: str, code: str) -> None:
        key = f"{booker}.{code}"
        self.booking_refusals[key] = self.booking_refusals.get(key, 0) + 1

    def count_claim_refusal(self, code: str) -> None:
        self.claim_refusals[code] = self.claim_refusals.get(code, 0) + 1

    def booked_ahead_figures(self, booker: str) -> dict[str, Any]:
        """What became of the rides `booker` booked ahead: booked, claimed, dispatched (released into
        dispatch), set off to their claiming driver, completed, still scheduled, the arrivals against the
        window, and (for the organisation) what was billed."""
        records = [r for r in self.booked_ahead.values() if r.booker == booker]
        arrivals = [r.arrival for r in records if r.arrival is not None]
        return {
            "booked": len(records),
            "claimed": sum(1 for r in records if r.claimed or r.trip_id in self.claims_won),
            "dispatched": sum(1 for r in records if r.left_scheduled_as == "dispatched"),
            "set_off_to_claimer": sum(1 for r in records if r.left_scheduled_as == "set_off"),
            "completed": sum(1 for r in records if r.status == "completed"),
            "unfulfilled": sum(1 for r in records if r.status == "unfulfilled"),
            "cancelled": sum(1 for r in records if r.status == "cancelled"),
            "still_scheduled": sum(1 for r in records if r.status == "scheduled"),
            "arrived": len(arrivals),
            "arrived_in_window": arrivals.count("in_window"),
            "arrived_early": arrivals.count("early"),
            "arrived_late": arrivals.count("late"),
            "in_window_share": arrivals.count("in_window") / len(arrivals) if arrivals else math.nan,
            "billed_cents": sum(r.billed_cents for r in records),
            "refused": {
                code.split(".", 1)[1]: count
                for code, count in sorted(self.booking_refusals.items())
                if code.startswith(f"{booker}.")
            },
        }

    def count_payment_refusal(self, *, rider: int, code: str) -> None:
        """Count a trip request the server refused for payment (402: `payment_method_required`,
        `payment_declined`, `payment_overdue`, `payment_authentication_required`)."""
        self.payment_refusals[code] = self.payment_refusals.get(code, 0) + 1
        self.riders_refused_payment.add(rider)

    def count_outcome(self, status: str, cancelled_by: str | None = None) -> None:
        """Count a trip's final status: `completed`, `unfulfilled` or `cancelled` (by whom)."""
        if status == "completed":
            self.trips_completed += 1
        elif status == "unfulfilled":
            self.trips_unfulfilled += 1
        elif status == "cancelled":
            if cancelled_by == "driver":
                self.trips_cancelled_by_driver += 1
            elif cancelled_by == "system":
                self.trips_cancelled_by_system += 1
            else:
                self.trips_cancelled_by_rider += 1
        else:
            raise ValueError(f"{status!r} is not a final trip status")

    @property
    def trips_cancelled(self) -> int:
        return self.trips_cancelled_by_rider + self.trips_cancelled_by_driver + self.trips_cancelled_by_system

    @property
    def utilisation(self) -> float:
        return self.driver_engaged_s / self.driver_online_s if self.driver_online_s > 0 else math.nan

    @property
    def trips_below_floor(self) -> int:
        return sum(1 for record in self.pay if not record.meets_floor)

    def hourly_earnings_gini(self) -> HourlyEarningsGini:
        """The Gini of hourly earnings among the drivers with comparable online hours, by the same function
        as the co-op's monthly figures (dispatch/matching/fairness_figures.py): each driver's pay for the
        trips they completed (tips not included) over their simulated online time."""
        earned: dict[str, int] = dict.fromkeys(self.driver_online_s_by_id, 0)
        for record in self.pay:
            if record.driver_id in earned:
                earned[record.driver_id] += record.driver_pay_cents
        return hourly_earnings_gini(
            [
                DriverTime(online_s=online_s, earnings_minor=earned[driver_id])
                for driver_id, online_s in self.driver_online_s_by_id.items()
            ]
        )

    def fairness_figures(self) -> dict[str, Any]:
        gini = self.hourly_earnings_gini()
        band = gini.band
        return {
            "hourly_earnings_gini": None if gini.gini is None else rounded(gini.gini),
            "band_hours": None
            if band is None
            else {"from": rounded(band.low_s / 3600), "to": rounded(band.high_s / 3600)},
            "drivers_online": gini.drivers_online,
            "drivers_included": gini.drivers_included,
        }

    def to_dict(self) -> dict[str, Any]:
        pay_ratios = [r.driver_pay_cents / r.floor_cents for r in self.pay if r.floor_cents > 0]
        return _json_safe(
            {
                "drivers": self.drivers,
                "riders": self.riders,
                "simulated_s": self.simulated_s,
                "trips": {
                    "requested": self.trips_requested,
                    "completed": self.trips_completed,
                    "unfulfilled": self.trips_unfulfilled,
                    "cancelled": self.trips_cancelled,
                    "cancelled_by_rider": self.trips_cancelled_by_rider,
                    "cancelled_by_driver": self.trips_cancelled_by_driver,
                    "cancelled_by_system": self.trips_cancelled_by_system,
                    "open_at_end": self.trips_open_at_end,
                },
                "pickup_eta_quoted_s": _stats(self.pickup_eta_quoted_s),
                "pickup_wait_s": _stats(self.pickup_wait_s),
                "driver_utilisation": self.utilisation,
                "fairness": self.fairness_figures(),
                "pay": {
                    "trips": len(self.pay),
                    "below_floor": self.trips_below_floor,
                    "total_pay_cents": sum(r.driver_pay_cents for r in self.pay),
                    "total_floor_cents": sum(r.floor_cents for r in self.pay),
                    "total_fares_cents": sum(r.fare_cents for r in self.pay),
                    "total_tips_cents": sum(r.tip_cents for r in self.pay),
                    "pay_to_floor_ratio": _stats(pay_ratios),
                },
                "payments": {
                    "cards_saved": self.cards_saved,
                    "requests_refused": dict(sorted(self.payment_refusals.items())),
                    "riders_refused": len(self.riders_refused_payment),
                },
                "booked_ahead": {
                    "riders": self.booked_ahead_figures("rider"),
                    "organisation": {
                        "name": self.organisation_name,
                        **self.booked_ahead_figures("organisation"),
                    },
                    "claims_won": len(self.claims_won),
                    "claims_refused": dict(sorted(self.claim_refusals.items())),
                },
            }
        )


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0, "mean": math.nan, "p50": math.nan, "p95": math.nan, "min": math.nan}
    return {
        "count": len(values),
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values),
    }


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _seconds(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.1f} s"


def _millis(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 1000:.1f}"


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# -- terminal -------------------------------------------------------------------------------------------


def summary_table(summary: SimulationSummary) -> Table:
    data = summary.to_dict()
    table = Table(title="Simulation summary", show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    requested = max(summary.trips_requested, 1)
    rows: list[tuple[str, str]] = [
        ("drivers / riders", f"{summary.drivers} / {summary.riders}"),
        ("simulated time", _seconds(summary.simulated_s)),
        ("trips requested", str(summary.trips_requested)),
        ("completed", f"{summary.trips_completed} ({summary.trips_completed / requested:.0%})"),
        ("unfulfilled", f"{summary.trips_unfulfilled} ({summary.trips_unfulfilled / requested:.0%})"),
        (
            "cancelled (rider / driver / system)",
            f"{summary.trips_cancelled} ({summary.trips_cancelled_by_rider} / "
            f"{summary.trips_cancelled_by_driver} / {summary.trips_cancelled_by_system})",
        ),
        ("still open at the end", str(summary.trips_open_at_end)),
        ("pickup ETA quoted, mean / p95", _pair(data["pickup_eta_quoted_s"])),
        ("pickup wait lived, mean / p95", _pair(data["pickup_wait_s"])),
        (
            "driver utilisation",
            "-" if not math.isfinite(summary.utilisation) else f"{summary.utilisation:.0%}",
        ),
        ("trips paid / below the floor", f"{len(summary.pay)} / {summary.trips_below_floor}"),
        (
            "driver pay / floor (total)",
            f"{_dollars(data['pay']['total_pay_cents'])} / {_dollars(data['pay']['total_floor_cents'])}",
        ),
        ("pay / floor, min / mean", _ratio_pair(data["pay"]["pay_to_floor_ratio"])),
        ("hourly earnings Gini, comparable hours", _gini(data["fairness"])),
        ("cards saved by riders", str(summary.cards_saved)),
        ("requests refused for payment", _refusals(summary)),
    ]
    riders_ahead = summary.booked_ahead_figures("rider")
    organisation = summary.booked_ahead_figures("organisation")
    if riders_ahead["booked"] or riders_ahead["refused"]:
        rows += _booked_ahead_rows(("booked ahead by riders", str(riders_ahead["booked"])), riders_ahead)
    if organisation["booked"] or organisation["refused"]:
        name = f" ({summary.organisation_name})" if summary.organisation_name else ""
        rows += _booked_ahead_rows(
            ("booked ahead by the organisation", f"{organisation['booked']}{name}"), organisation
        )
        rows.append(("  billed to the organisation", _dollars(organisation["billed_cents"])))
    if summary.claims_won or summary.claim_refusals:
        refused = ", ".join(f"{code} {n}" for code, n in sorted(summary.claim_refusals.items()))
        rows.append(
            (
                "reservations claimed by drivers",
                f"{len(summary.claims_won)}" + (f" (refused: {refused})" if refused else ""),
            )
        )
    for measure, value in rows:
        table.add_row(measure, value)
    return table


def _booked_ahead_rows(heading: tuple[str, str], figures: dict[str, Any]) -> list[tuple[str, str]]:
    """One booker's rides booked ahead: a heading row, then what became of them (indented)."""
    rows = [
        heading,
        (
            "  claimed / dispatched / set off",
            f"{figures['claimed']} / {figures['dispatched']} / {figures['set_off_to_claimer']}",
        ),
        ("  completed / still to come", f"{figures['completed']} / {figures['still_scheduled']}"),
        ("  pickups inside the window", _in_window(figures)),
    ]
    if figures["refused"]:
        codes = ", ".join(f"{code} {count}" for code, count in figures["refused"].items())
        rows.append(("  bookings refused", f"{sum(figures['refused'].values())} ({codes})"))
    return rows


def _in_window(figures: dict[str, Any]) -> str:
    if not figures["arrived"]:
        return "-"
    return (
        f"{figures['arrived_in_window']} of {figures['arrived']} ({figures['in_window_share']:.0%}; "
        f"{figures['arrived_early']} early, {figures['arrived_late']} late)"
    )


def _pair(stats: dict[str, Any]) -> str:
    if not stats["count"]:
        return "-"
    return f"{stats['mean']:.1f} s / {stats['p95']:.1f} s"


def _gini(fairness: dict[str, Any]) -> str:
    """`0.123 (9 of 10 drivers online 0.250-0.750 h)`: the Gini and whom it is over."""
    if fairness["hourly_earnings_gini"] is None:
        return "-"
    band = fairness["band_hours"]
    return (
        f"{fairness['hourly_earnings_gini']:.3f} ({fairness['drivers_included']} of "
        f"{fairness['drivers_online']} drivers online {band['from']:.3f}-{band['to']:.3f} h)"
    )


def _refusals(summary: SimulationSummary) -> str:
    total = sum(summary.payment_refusals.values())
    if not total:
        return "0"
    codes = ", ".join(f"{code} {count}" for code, count in sorted(summary.payment_refusals.items()))
    return f"{total} ({len(summary.riders_refused_payment)} riders: {codes})"


def _ratio_pair(stats: dict[str, Any]) -> str:
    if not stats["count"]:
        return "-"
    return f"{stats['min']:.2f} / {stats['mean']:.2f}"


def latency_table(metrics: MetricsRecorder) -> Table:
    table = Table(title="Latency by step (ms)", show_header=True, header_style="bold")
    for column in ("step", "count", "errors", "mean", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for s in metrics.summaries():
        table.add_row(
            s.step,
            str(s.count),
            str(s.errors),
            _millis(s.mean_s),
            _millis(s.p50_s),
            _millis(s.p95_s),
            _millis(s.p99_s),
            _millis(s.max_s),
        )
    return table


def print_report(
    metrics: MetricsRecorder, summary: SimulationSummary | None = None, console: Console | None = None
) -> None:
    console = console or Console()
    if summary is not None:
        console.print(summary_table(summary))
    console.print(latency_table(metrics))
    if metrics.counters:
        counters = Table(title="Counters", show_header=True, header_style="bold")
        counters.add_column("counter")
        counters.add_column("value", justify="right")
        for name, value in sorted(metrics.counters.items()):
            counters.add_row(name, str(value))
        console.print(counters)


# -- files ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadResultFiles:
    results_json: Path
    latency_png: Path
    throughput_png: Path


def write_load_results(
    metrics: MetricsRecorder,
    out_dir: Path | str,
    *,
    summary: SimulationSummary | None = None,
    meta: dict[str, Any] | None = None,
    bucket_s: float = 1.0,
) -> LoadResultFiles:
    """Write `results.json`, `latency.png` and `throughput.png` into `out_dir` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {"meta": meta or {}, "metrics": metrics.to_dict()}
    if summary is not None:
        results["summary"] = summary.to_dict()
    results_json = out / "results.json"
    results_json.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    latency_png = out / "latency.png"
    plot_latency_over_time(metrics, latency_png, bucket_s=max(bucket_s, 5.0))
    throughput_png = out / "throughput.png"
    plot_throughput_over_time(metrics, throughput_png, bucket_s=bucket_s)
    return LoadResultFiles(results_json, latency_png, throughput_png)


def plot_latency_over_time(metrics: MetricsRecorder, path: Path | str, *, bucket_s: float = 5.0) -> Path:
    """Every sample as a faint dot, and each step's p95 per `bucket_s` window as a line."""
    figure = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    all_positive = True
    for index, step in enumerate(metrics.steps()):
        samples = [s for s in metrics.samples(step) if s.ok]
        if not samples:
            continue
        colour = f"C{index % 10}"
        times = [s.at_s for s in samples]
        millis = [s.latency_s * 1000 for s in samples]
        all_positive = all_positive and min(millis) > 0
        axes.scatter(times, millis, s=4, alpha=0.25, color=colour)
        windows: dict[int, list[float]] = {}
        for t, ms in zip(times, millis, strict=True):
            windows.setdefault(int(t // bucket_s), []).append(ms)
        keys = sorted(windows)
        axes.plot(
            [(k + 0.5) * bucket_s for k in keys],
            [percentile(windows[k], 95) for k in keys],
            color=colour,
            linewidth=1.6,
            label=f"{step} p95",
        )
    if metrics.steps():
        if all_positive:
            axes.set_yscale("log")
        axes.legend(loc="upper left", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no samples", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("latency (ms)")
    axes.set_title("Latency over time")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)


def plot_throughput_over_time(metrics: MetricsRecorder, path: Path | str, *, bucket_s: float = 1.0) -> Path:
    """Completed steps per second over time: one line per step and the total."""
    figure = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, step in enumerate(metrics.steps()):
        series = metrics.throughput(step, bucket_s)
        axes.plot(
            [t for t, _ in series], [r for _, r in series], color=f"C{index % 10}", label=step, linewidth=1
        )
    total = metrics.throughput(None, bucket_s)
    if total:
        axes.plot([t for t, _ in total], [r for _, r in total], color="black", linewidth=2, label="all steps")
        axes.legend(loc="upper left", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no samples", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("completed per second")
    axes.set_title("Throughput over time")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)
