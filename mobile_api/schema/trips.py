"""What the OpenAPI description of the fare and trip routes needs beyond their serializers: the refusals each
route names (the codes every route of a kind answers, idempotency's included, are added by
RochdaleAutoSchema) and the examples."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from mobile_api.schema.errors import idempotency_errors

TRIP_ID = "6a0d7c4e-55c1-4f7e-a3f1-0b5b8e1f2c33"
TRIP_ID_PARAMETER = OpenApiParameter("trip_id", type=uuid.UUID, location=OpenApiParameter.PATH)

# What `Idempotency-Key` may answer; RochdaleAutoSchema adds them to every `@idempotent` method by itself.
IDEMPOTENCY_ERRORS = idempotency_errors(required=True)
OPTIONAL_IDEMPOTENCY_ERRORS = idempotency_errors(required=False)

# --- Refusals by route: {status: [code, ...]} ---------------------------------------------------------------

FARE_ESTIMATE = {422: ["outside_service_area"], 503: ["no_fare_policy"]}
TRIP_REQUEST = {
    402: [
        "payment_overdue",
        "payment_method_required",
        "payment_declined",
        "payment_authentication_required",
    ],
    400: ["scheduled_for_invalid", "pickup_window_invalid"],
    403: ["rider_role_required"],
    409: ["trip_in_progress", "reservation_overlaps"],
    422: [
        "outside_service_area",
        "estimate_not_found",
        "estimate_expired",
        "estimate_mismatch",
        "scheduled_too_soon",
        "scheduled_too_far_ahead",
    ],
    503: ["no_fare_policy"],
}
TRIP_READ = {404: ["trip_not_found"]}
TRIP_CANCEL = {404: ["trip_not_found"], 409: ["trip_not_cancellable"]}
TRIP_RATE = {
    400: ["stars_out_of_range"],
    404: ["trip_not_found"],
    409: ["trip_not_completed", "already_rated"],
}
TRIP_TIP = {
    400: ["tip_amount_invalid"],
    403: ["only_rider_may_tip"],
    404: ["trip_not_found"],
    409: ["trip_not_completed"],
    422: ["currency_mismatch", "tip_too_large"],
}

# --- Examples ---------------------------------------------------------------------------------------------

PLACES = {"pickup": {"lat": 40.7580, "lng": -73.9855}, "dropoff": {"lat": 40.7128, "lng": -74.0060}}
# A planned route, shortened: a real one has a point at every bend of the streets it takes.
ROUTE_EXAMPLE = {
    "router": "valhalla",
    "geometry": {
        "type": "LineString",
        "coordinates": [[-73.9855, 40.758], [-73.9911, 40.7503], [-74.0012, 40.7311], [-74.006, 40.7128]],
    },
}
TRIP_EXAMPLE = {
    "id": TRIP_ID,
    "status": "requested",
    **PLACES,
    "wheelchair_accessible": False,
    "requested_at": "2026-11-21T14:03:00Z",
    "rider": {"id": "6f1c2b1e-8d4a-4c53-9f43-3f3c2a7d9b10", "name": "Ada Rider"},
    "driver": None,
    "fare_estimate": {"amount": 2307, "currency": "USD"},
    "fare": None,
    "driver_pay": None,
    "cancellation_fee": None,
    "fare_breakdown": None,
    "total": None,
    "distance_m": 7412,
    "duration_s": 1260,
    "cancelled_by": None,
    "events": [{"status": "requested", "at": "2026-11-21T14:03:00Z"}],
    "route": ROUTE_EXAMPLE,
    "distance_source": None,
    "reservation": None,
    "organisation": None,
    "ride_pin": None,
}
ESTIMATE_ID = "0c6f1d0e-2b7a-4d0c-9d8e-1f2a3b4c5d6e"

FARE_ESTIMATE_EXAMPLES = [
    OpenApiExample(
        "a ride across Manhattan", value={**PLACES, "wheelchair_accessible": False}, request_only=True
    ),
    OpenApiExample(
        "estimate",
        value={
            "estimate_id": ESTIMATE_ID,
            "fare": {"amount": 2307, "currency": "USD"},
            "distance_m": 7412,
            "duration_s": 1260,
            "pickup_eta_s": 240,
            "driver_pay_minimum": {"amount": 1927, "currency": "USD"},
            "policy_version": 1,
            "breakdown": [
                {"label": "Base fare", "amount": 250},
                {"label": "Distance", "amount": 806},
                {"label": "Time", "amount": 735},
            ],
            "expires_at": "2026-11-21T14:08:00Z",
            "route": ROUTE_EXAMPLE,
            "fees": [],
            "total": {"amount": 2307, "currency": "USD"},
        },
        response_only=True,
        status_codes=["200"],
    ),
]
TRIP_REQUEST_EXAMPLES = [
    OpenApiExample("with an estimate", value={**PLACES, "estimate_id": ESTIMATE_ID}, request_only=True),
    OpenApiExample("requested", value=TRIP_EXAMPLE, response_only=True, status_codes=["201"]),
]
TRIP_READ_EXAMPLES = [OpenApiExample("requested", value=TRIP_EXAMPLE, response_only=True)]
TRIP_CANCEL_EXAMPLES = [
    OpenApiExample("with a reason", value={"reason": "Plans changed"}, request_only=True),
    OpenApiExample(
        "cancelled",
        value={
            **TRIP_EXAMPLE,
            "status": "cancelled",
            "cancelled_by": "rider",
            "events": [
                {"status": "requested", "at": "2026-11-21T14:03:00Z"},
                {"status": "cancelled", "at": "2026-11-21T14:04:10Z"},
            ],
        },
        response_only=True,
        status_codes=["200"],
    ),
]
TRIP_RATE_EXAMPLES = [
    OpenApiExample("five stars", value={"stars": 5, "comment": "Smooth ride"}, request_only=True),
    OpenApiExample(
        "rating",
        value={
            "id": "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b",
            "trip_id": TRIP_ID,
            "author_role": "rider",
            "stars": 5,
            "comment": "Smooth ride",
            "created_at": "2026-11-21T14:40:00Z",
        },
        response_only=True,
        status_codes=["201"],
    ),
]
TRIP_TIP_EXAMPLES = [
    OpenApiExample("three dollars", value={"amount": {"amount": 300, "currency": "USD"}}, request_only=True),
    OpenApiExample(
        "tip",
        value={
            "id": "2c3d4e5f-6071-4829-9aab-1c2d3e4f5a6b",
            "trip_id": TRIP_ID,
            "amount": {"amount": 300, "currency": "USD"},
            "created_at": "2026-11-21T14:41:00Z",
        },
        response_only=True,
        status_codes=["201"],
    ),
]
