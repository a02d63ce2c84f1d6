"""`manage.py simulate`: a live demo city (or a fixed load) driven through the real API and websockets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dispatch.simulation.road_routing import SIMULATION_ROUTERS, SimulationRouterError
from dispatch.simulation.runner import (
    DEMO_CLAIM_PROBABILITY,
    DEMO_ORGANISATION_BOOKINGS_PER_MINUTE,
    DEMO_SCHEDULED_SHARE,
    REPO_ROOT,
    LoadProfile,
    SimulationConfig,
    configure_booking_ahead,
    default_out_dir,
    run_simulation,
)


class Command(BaseCommand):
    help = (
        "Drive simulated drivers and riders through Rochdale's REST API and websockets, as the apps would, "
        "and print a summary (trips, pickup times, utilisation, pay against the floor, latency by step). "
        "With --load PROFILE, run a fixed load from infra/load/profiles/ and write results and plots."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--drivers", type=int, default=None, help="simulated drivers (default 30)")
        parser.add_argument("--riders", type=int, default=None, help="simulated riders (default 20)")
        parser.add_argument("--duration", type=float, default=None, help="seconds of new requests (60)")
        parser.add_argument(
            "--speedup", type=float, default=None, help="motion and human delays run this much faster (8)"
        )
        parser.add_argument("--accept-rate", type=float, default=None, help="share of offers accepted (0.9)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server to talk to")
        parser.add_argument("--seed", type=int, default=1, help="seed of every random draw")
        parser.add_argument(
            "--requests-per-minute", type=float, default=None, help="requests at the demand peak"
        )
        parser.add_argument("--drain", type=float, default=None, help="seconds to let trips finish (30)")
        parser.add_argument("--load", default=None, help="a load profile name or JSON path")
        parser.add_argument("--out", default=None, help="write results.json and plots here")
        parser.add_argument(
            "--token-cache",
            default=str(REPO_ROOT / "var" / "sim" / "tokens.json"),
            help="remember the simulated users' refresh tokens here ('' to keep none)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no live progress line")
        parser.add_argument(
            "--opening-requests", type=int, default=0, help="riders who request as soon as demand starts"
        )
        parser.add_argument(
            "--router",
            choices=SIMULATION_ROUTERS,
            default="auto",
            help="what the simulated cars drive on: Valhalla's routes on the server's tiles"
            " (ROCHDALE_ROADS_DIR / ROCHDALE_ROADS_CITY), the city's own Dijkstra, or auto: Valhalla when"
            " those tiles were built from this city (make run builds them), else Dijkstra",
        )
        parser.add_argument(
            "--scheduled-share",
            type=float,
            default=None,
            help=f"share of riders who book every ride ahead ({DEMO_SCHEDULED_SHARE}; 0 with --load)",
        )
        parser.add_argument(
            "--organisation-bookings-per-minute",
            type=float,
            default=None,
            help="rides the demo organisation's system books for its guests with its API key, a minute"
            f" ({DEMO_ORGANISATION_BOOKINGS_PER_MINUTE}; 0 with --load)",
        )
        parser.add_argument(
            "--claim-probability",
            type=float,
            default=None,
            help="chance a free driver looking at the reservations near them claims one"
            f" ({DEMO_CLAIM_PROBABILITY}; 0 with --load)",
        )
        parser.add_argument(
            "--organisation-credentials",
            default=str(REPO_ROOT / "var" / "demo-credentials.json"),
            help="seed_demo's credentials file, whose `organisation` holds the organisation's id and API key",
        )
        parser.add_argument(
            "--stripe-api-base",
            default=None,
            help="where the simulated riders confirm the cards they save, as Stripe's SDK would"
            " (default STRIPE_API_BASE; only a fake Stripe such as localstripe, never the real one)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        overrides = {
            "drivers": options["drivers"],
            "riders": options["riders"],
            "duration_s": options["duration"],
            "speedup": options["speedup"],
            "accept_rate": options["accept_rate"],
            "drain_s": options["drain"],
            "requests_per_minute": options["requests_per_minute"],
            "opening_requests": options["opening_requests"],
        }
        if options["load"]:
            try:
                profile = LoadProfile.load(options["load"])
            except (FileNotFoundError, TypeError, ValueError) as error:
                raise CommandError(str(error)) from error
            config = SimulationConfig.from_profile(profile, **overrides)
            config.out_dir = Path(options["out"]) if options["out"] else default_out_dir()
        else:
            config = SimulationConfig()
            for key, value in overrides.items():
                if value is not None:
                    setattr(config, key, value)
            config.out_dir = Path(options["out"]) if options["out"] else None
        config.base_url = options["base_url"].rstrip("/")
        config.seed = options["seed"]
        config.progress = not options["no_progress"]
        config.token_cache = Path(options["token_cache"]) if options["token_cache"] else None
        # The cars drive on the tiles the server routes on, so quoted and lived ETAs share one road graph.
        config.router = options["router"]
        config.roads_dir = Path(settings.ROCHDALE_ROADS_DIR)
        config.roads_city = str(settings.ROCHDALE_ROADS_CITY)
        config.stripe_api_base = options["stripe_api_base"] or settings.STRIPE_API_BASE
        note = configure_booking_ahead(
            config,
            scheduled_share=options["scheduled_share"],
            organisation_bookings_per_minute=options["organisation_bookings_per_minute"],
            claim_probability=options["claim_probability"],
            credentials=Path(options["organisation_credentials"]),
            load=bool(options["load"]),
        )
        if note:
            self.stderr.write(note)
        if not 0 <= config.accept_rate <= 1:
            raise CommandError("--accept-rate is a share between 0 and 1")
        if config.drivers < 0 or config.riders < 0 or config.speedup <= 0:
            raise CommandError("--drivers and --riders must be positive, --speedup above 0")
        if not (0 <= config.scheduled_share <= 1 and 0 <= config.claim_probability <= 1):
            raise CommandError("--scheduled-share and --claim-probability are shares between 0 and 1")
        if (options["organisation_bookings_per_minute"] or 0) < 0:
            raise CommandError("--organisation-bookings-per-minute must not be negative")
        try:
            run_simulation(config)
        except SimulationRouterError as error:
            raise CommandError(str(error)) from error
