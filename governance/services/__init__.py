"""Governance actions: every write of the co-op's democracy goes through here (docs/governance.md).

This package re-exports every action, so callers write ``from governance.services import membership_join``
or ``services.membership_join`` whichever module of the package holds it.
"""

from governance.services.proposals import *  # noqa: F403 - the package's public names
from governance.services.proposals import MAX_VOTING_DAYS, __all__, proposal_rule  # noqa: F401
