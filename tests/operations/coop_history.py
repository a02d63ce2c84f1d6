"""A little of a co-op's life made through the real services, for the backup and audit head tests: drivers
join (member shares: audit entries), staff seat founding directors (audit entries), and trips are completed
and settled (journal entries and postings, the share instalments withheld)."""

from __future__ import annotations

from dataclasses import dataclass

from governance import services as governance
from tests.factories import DriverFactory, RiderFactory, StaffFactory
from tests.fares.builders import adopt_policy, complete_trip, in_progress_trip


@dataclass(frozen=True)
class CoopHistory:
    members: int
    directors: int
    trips: int


def coop_history(*, members: int = 3, directors: int = 2, trips_per_member: int = 2) -> CoopHistory:
    policy = adopt_policy()
    staff = StaffFactory()
    joined = [governance.membership_join(user=DriverFactory()) for _ in range(members)]
    for member in joined[:directors]:
        governance.board_seat_found(member_id=member.id, actor=staff)
    rider = RiderFactory()
    for member in joined:
        for _ in range(trips_per_member):
            trip = in_progress_trip(rider=rider, driver=member.user, policy_version=policy)
            complete_trip(trip, distance_m=6000, duration_s=1100)
    return CoopHistory(members=members, directors=directors, trips=members * trips_per_member)
