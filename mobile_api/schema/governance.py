"""What the OpenAPI description of the governance routes needs beyond their serializers: the refusals each
route names (the codes every route of a kind answers are added by RochdaleAutoSchema) and the examples."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

from backend.fares.policy import DEFAULT_POLICY_DOCUMENT

# --- Refusals by route: {status: [code, ...]} ---------------------------------------------------------------

NOT_A_MEMBER = {403: ["not_a_member"]}  # readers must be members (any status but withdrawn) or staff
STAFF_ONLY = {403: ["staff_only"]}

MEMBERSHIP_JOIN = {403: ["not_an_approved_driver"], 409: ["already_member"]}
MEMBERSHIP_READ = {404: ["not_a_member"]}
MEMBERSHIP_WITHDRAW = {404: ["not_a_member"]}
MEMBER_STATUS_SET = {**STAFF_ONLY, 404: ["not_found"], 409: ["member_withdrawn"]}
BOARD_SEAT_FOUND = {**STAFF_ONLY, 404: ["not_found"], 409: ["not_in_good_standing", "already_director"]}
PROPOSAL_CREATE = {
    400: ["invalid_fare_policy", "invalid_dividend"],
    403: ["not_eligible", "not_a_director"],
    409: ["no_eligible_voters"],
}
PROPOSAL_READ = {**NOT_A_MEMBER, 404: ["not_found"]}
PROPOSAL_VOTE = {403: ["not_eligible"], 404: ["not_found"], 409: ["voting_closed", "already_voted"]}
ELECTION_CREATE = {403: ["not_a_director"]}
ELECTION_READ = {**NOT_A_MEMBER, 404: ["not_found"]}
ELECTION_NOMINATE = {
    403: ["not_a_member", "not_eligible"],
    404: ["not_found"],
    409: ["nominations_closed", "already_nominated"],
}
ELECTION_BALLOT_CAST = {
    403: ["not_a_member", "not_eligible"],
    404: ["not_found"],
    409: ["voting_closed", "already_voted"],
}
BALLOT_RECORD_READ = {404: ["not_found"], 409: ["election_not_closed"]}

# --- Examples ---------------------------------------------------------------------------------------------

MEMBER_ID = "0b5e3a38-4d0f-4a53-9d2e-3f0d8c7a1e55"

FARE_POLICY_EXAMPLE = {
    "kind": "fare_policy",
    "title": "Raise the per-mile rate",
    "body": "Fuel went up; riders pay 10 cents more a mile, drivers keep 85%.",
    "payload": {
        **DEFAULT_POLICY_DOCUMENT,
        "rider": {**DEFAULT_POLICY_DOCUMENT["rider"], "per_distance": "1.86"},
        "effective_at": "2026-12-01T05:00:00Z",
    },
    "closes_at": "2026-11-28T17:00:00Z",
}
DIVIDEND_EXAMPLE = {
    "kind": "dividend",
    "title": "2026 patronage dividend",
    "body": "Share $12,000 of the 2026 surplus by trips driven, 40% in cash.",
    "payload": {
        "surplus": {"amount": 1200000, "currency": "USD"},
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "basis": "trips",
        "cash_share": "0.40",
    },
    "closes_at": "2027-01-31T17:00:00Z",
}

MEMBERSHIP_JOIN_EXAMPLES = [
    OpenApiExample(
        "Joined",
        response_only=True,
        status_codes=["201"],
        value={
            "member_id": MEMBER_ID,
            "status": "active",
            "share_price": {"amount": 10000, "currency": "USD"},
            "paid": {"amount": 0, "currency": "USD"},
            "joined_at": "2026-11-21T14:03:00Z",
        },
    )
]
PROPOSAL_CREATE_EXAMPLES = [
    OpenApiExample("Fare policy", request_only=True, value=FARE_POLICY_EXAMPLE),
    OpenApiExample("Dividend", request_only=True, value=DIVIDEND_EXAMPLE),
]
PROPOSAL_VOTE_EXAMPLES = [
    OpenApiExample("Vote", request_only=True, value={"choice": "yes"}),
    OpenApiExample(
        "Receipt", response_only=True, status_codes=["201"], value={"receipt": "q0P3rM1bGk8uXfYc2hNw9aLs"}
    ),
]
ELECTION_CREATE_EXAMPLES = [
    OpenApiExample(
        "Two seats",
        request_only=True,
        value={
            "title": "2027 board election",
            "seats": 2,
            "nominations_close_at": "2027-01-10T17:00:00Z",
            "voting_closes_at": "2027-01-24T17:00:00Z",
        },
    )
]
