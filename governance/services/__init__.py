"""Governance actions: every write of the co-op's democracy goes through here, one transaction each, with
its audit entry in the same transaction (docs/governance.md). Reads are governance/selectors.py.

One module per subdomain: membership (joining, the share, suspension, withdrawal), board (seats),
proposals (and their votes and decisions), fare_policy and dividends (what a passed proposal does),
elections; receipts and limits are shared. This package re-exports every action, so callers write
``from governance.services import membership_join`` or ``services.membership_join``.

Services take keyword-only arguments, raise ``backend.errors`` domain errors the edges shape into the
contract's error body, and leave races to the database (unique indexes, row locks; the lock order is in
governance/audit.py).
"""

from governance.services.board import board_seat_found
from governance.services.discussion import (
    proposal_comment_add,
    proposal_comment_edit,
    proposal_comment_hide,
)
from governance.services.elections import (
    close_due_elections,
    election_ballot_cast,
    election_close,
    election_create,
    election_nominate,
    election_withdraw,
)
from governance.services.limits import MAX_BODY_LENGTH, MAX_TITLE_LENGTH, MAX_VOTING_DAYS
from governance.services.membership import (
    TripPay,
    membership_join,
    membership_set_status,
    membership_withdraw,
    share_instalment_withhold,
)
from governance.services.proposals import close_due_proposals, proposal_create, proposal_vote
from governance.services.receipts import receipt_hash

__all__ = [
    "MAX_BODY_LENGTH",
    "MAX_TITLE_LENGTH",
    "MAX_VOTING_DAYS",
    "TripPay",
    "board_seat_found",
    "close_due_elections",
    "close_due_proposals",
    "election_ballot_cast",
    "election_close",
    "election_create",
    "election_nominate",
    "election_withdraw",
    "membership_join",
    "membership_set_status",
    "membership_withdraw",
    "proposal_comment_add",
    "proposal_comment_edit",
    "proposal_comment_hide",
    "proposal_create",
    "proposal_vote",
    "receipt_hash",
    "share_instalment_withhold",
]
