"""Counting ranked ballots: instant-runoff (one seat) and single transferable vote (several seats).

Pure Python, no Django: the election service loads the public ballot record and calls these functions,
and anyone holding the same record can recount and get the same result, stage by stage.

STV variant: the Scottish Local Government Elections Order 2007 (SSI 2007/42), schedule 1, rules 45-52,
as used for every Scottish council election since 2007. In short:

- Quota (rule 46): Droop, ``floor(valid ballots / (seats + 1)) + 1``.
- A candidate whose votes equal or exceed the quota is elected (rule 47).
- Surplus transfer (rule 48), Weighted Inclusive Gregory: *every* ballot the elected candidate holds moves
  to its next continuing preference at ``surplus * value when received / candidate's total``, calculated
  to five decimal places with the remainder ignored (truncated). Value on ballots with no further
  preference is lost ("non-transferable"), as is what the truncation drops; both are recorded.
- The largest surplus goes first; equal surpluses are ordered by the votes at the most recent preceding
  stage at which those candidates differed, then by lot (rule 49).
- When no surplus is left, the candidate with the fewest votes is excluded and each of their ballots moves
  at the value it arrived with (rule 50); ties look back to the most recent preceding stage at which the
  candidates differed, then lot (rule 51).
- When the continuing candidates are no more than the seats left, they are all elected without further
  transfers (rule 52; "no more than" also covers fewer candidates than seats, which leaves seats unfilled).
- The count stops as soon as every seat is filled.

Values are held as integers in units of 0.00001 vote, so the arithmetic is exact and matches the
five-decimal truncation of rule 48(3) digit for digit. Every stage records every candidate's total, so the
published record can be checked against an independent count (OpenSTV and eSTV implement the same rules).

IRV (``count_irv``) is the single-seat instant runoff: a candidate with more than half of the votes still
in play (exhausted ballots no longer count) wins; otherwise the candidate with the fewest votes is excluded
and their ballots move to the next continuing preference. Ties use the same rule-51 look-back and lot.

"By lot" is reproducible: the lot picks, among the tied candidates, the one with the lowest
``sha256(lot_seed + "\\x00" + name)`` (hex): that one is excluded, or has its surplus transferred first, or
is listed first among those elected together. The election service should fix ``lot_seed`` (for instance
the election id) before ballots are opened and publish it with the result. A stage whose exclusion or
surplus order was drawn says so (``tie_break == "lot"``); ``CountResult.lot_used`` is set whenever the lot
was drawn at all (including only to list candidates elected at the same stage with equal votes).

With no valid ballot at all nobody is elected (a count of nothing should not seat anyone by lot).

Withdrawn candidates (a member who stood down after ballots were cast) are treated as never having stood:
preferences for them are skipped. A ballot with no preference for a standing candidate is not a valid vote
and does not count toward the quota; the record reports how many there were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "IRV",
    "SCOTTISH_STV_2007",
    "BallotError",
    "CountResult",
    "CountRound",
    "count_irv",
    "count_stv",
    "validate_ballots",
]

SCOTTISH_STV_2007 = "scottish-stv-2007"
IRV = "irv"

_SCALE = 100_000  # one vote, in units of 0.00001 vote (rule 48(3): five decimal places)
_PLACES = Decimal("0.00001")

StageAction = Literal["first_preferences", "surplus", "exclusion"]
TieBreak = Literal["earlier_stage", "lot"]


class BallotError(ValueError):
    """A ballot names an unknown candidate or ranks one candidate twice."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"ballot {index}: {message}")
        self.index = index


@dataclass(frozen=True)
class CountRound:
    """One stage of the count, as it would be published on a result sheet.

    ``tallies`` gives every standing candidate's votes at the end of the stage (an elected candidate whose
    surplus has gone shows the quota; an excluded one shows zero). ``transfers`` is what each candidate
    gained at this stage (the transferring or excluded candidate shows a negative amount).
    ``non_transferable`` is the value on ballots that had no further preference at this stage, and
    ``lost_to_rounding`` what the five-decimal truncation dropped. ``exhausted_total`` is the running sum of
    both since the first stage, so ``sum(tallies) + exhausted_total == valid_ballots`` at every stage.
    ``transfer_value`` (surplus stages) is the value a ballot received at full value moves on with; one
    received at a lower value moves at ``surplus * its value / total``, truncated the same way.
    ``threshold`` is the quota (STV) or the majority of the votes still in play (IRV) at this stage.
    """

    number: int
    action: StageAction
    subject: str | None
    transfer_value: Decimal | None
    transfers: Mapping[str, Decimal]
    non_transferable: Decimal
    lost_to_rounding: Decimal
    exhausted_total: Decimal
    tallies: Mapping[str, Decimal]
    threshold: Decimal
    elected: tuple[str, ...]
    excluded: tuple[str, ...]
    tie_break: TieBreak | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "action": self.action,
            "subject": self.subject,
            "transfer_value": None if self.transfer_value is None else str(self.transfer_value),
            "transfers": {name: str(value) for name, value in self.transfers.items()},
            "non_transferable": str(self.non_transferable),
            "lost_to_rounding": str(self.lost_to_rounding),
            "exhausted_total": str(self.exhausted_total),
            "tallies": {name: str(value) for name, value in self.tallies.items()},
            "threshold": str(self.threshold),
            "elected": list(self.elected),
            "excluded": list(self.excluded),
            "tie_break": self.tie_break,
        }


@dataclass(frozen=True)
class CountResult:
    """The outcome of a count and the full stage-by-stage record behind it.

    ``elected`` is in order of election. ``quota`` is the Droop quota for STV; for IRV it is the majority
    of the first stage (each IRV round carries its own ``threshold``, since exhausted ballots shrink it).
    """

    method: str
    seats: int
    candidates: tuple[str, ...]
    withdrawn: tuple[str, ...]
    valid_ballots: int
    empty_ballots: int
    quota: Decimal
    elected: tuple[str, ...]
    excluded: tuple[str, ...]
    unfilled_seats: int
    rounds: tuple[CountRound, ...]
    lot_seed: str = ""
    lot_used: bool = field(default=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seats": self.seats,
            "candidates": list(self.candidates),
            "withdrawn": list(self.withdrawn),
            "valid_ballots": self.valid_ballots,
            "empty_ballots": self.empty_ballots,
            "quota": str(self.quota),
            "elected": list(self.elected),
            "excluded": list(self.excluded),
            "unfilled_seats": self.unfilled_seats,
            "lot_seed": self.lot_seed,
            "lot_used": self.lot_used,
            "rounds": [stage.to_dict() for stage in self.rounds],
        }


def validate_ballots(ballots: Sequence[Sequence[str]], candidates: Collection[str]) -> None:
    """Raise ``BallotError`` for the first ballot that names an unknown candidate or repeats one."""
    known = set(candidates)
    for index, ballot in enumerate(ballots):
        if isinstance(ballot, str):
            raise BallotError(index, "a ballot is a sequence of candidate names, not a single string")
        seen: set[str] = set()
        for name in ballot:
            if name not in known:
                raise BallotError(index, f"unknown candidate {name!r}")
            if name in seen:
                raise BallotError(index, f"candidate {name!r} is ranked more than once")
            seen.add(name)


def count_stv(
    ballots: Sequence[Sequence[str]],
    candidates: Sequence[str],
    seats: int,
    *,
    withdrawn: Collection[str] = (),
    lot_seed: str = "",
) -> CountResult:
    """Count ranked ballots for ``seats`` seats under the Scottish STV rules of 2007 (see module doc)."""
    election = _Election(ballots, candidates, seats, withdrawn=withdrawn, lot_seed=lot_seed)
    return election.run_stv()


def count_irv(
    ballots: Sequence[Sequence[str]],
    candidates: Sequence[str],
    *,
    withdrawn: Collection[str] = (),
    lot_seed: str = "",
) -> CountResult:
    """Count ranked ballots for one seat by instant runoff (majority of the continuing votes)."""
    election = _Election(ballots, candidates, 1, withdrawn=withdrawn, lot_seed=lot_seed)
    return election.run_irv()


def _to_decimal(units: int) -> Decimal:
    return (Decimal(units) / _SCALE).quantize(_PLACES)


@dataclass
class _Parcel:
    """Identical ballots held by one candidate at one value (in 0.00001-vote units per ballot)."""

    ranking: tuple[str, ...]
    count: int
    value: int


class _Election:
    def __init__(
        self,
        ballots: Sequence[Sequence[str]],
        candidates: Sequence[str],
        seats: int,
        *,
        withdrawn: Collection[str],
        lot_seed: str,
    ) -> None:
        if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
            raise ValueError("seats must be a positive integer")
        names = tuple(candidates)
        if len(set(names)) != len(names):
            raise ValueError("candidate names must be unique")
        if any(not isinstance(name, str) or not name for name in names):
            raise ValueError("candidate names must be non-empty strings")
        unknown_withdrawn = set(withdrawn) - set(names)
        if unknown_withdrawn:
            raise ValueError(f"withdrawn candidates are not candidates: {sorted(unknown_withdrawn)}")
        validate_ballots(ballots, names)

        self.seats = seats
        self.candidates = names
        self.withdrawn = tuple(name for name in names if name in set(withdrawn))
        self.standing = tuple(name for name in names if name not in set(withdrawn))
        self.lot_seed = lot_seed
        self.lot_used = False

        grouped: dict[tuple[str, ...], int] = {}
        empty = 0
        standing = set(self.standing)
        for ballot in ballots:
            ranking = tuple(name for name in ballot if name in standing)
            if not ranking:
                empty += 1
                continue
            grouped[ranking] = grouped.get(ranking, 0) + 1
        self.empty_ballots = empty
        self.valid_ballots = sum(grouped.values())

        self.continuing: list[str] = list(self.standing)
        self.elected: list[str] = []
        self.excluded: list[str] = []
        self.votes: dict[str, int] = dict.fromkeys(self.standing, 0)
        self.piles: dict[str, list[_Parcel]] = {name: [] for name in self.standing}
        self.history: list[dict[str, int]] = []
        self.rounds: list[CountRound] = []
        self.exhausted_units = 0
        # Keep parcel order deterministic (first appearance in the ballot record).
        for ranking, count in grouped.items():
            self.piles[ranking[0]].append(_Parcel(ranking, count, _SCALE))
            self.votes[ranking[0]] += count * _SCALE

    # -- shared machinery -------------------------------------------------------------------------------

    def _lot_key(self, name: str) -> str:
        return hashlib.sha256(f"{self.lot_seed}\x00{name}".encode()).hexdigest()

    def _pick(self, tied: list[str], *, lowest: bool) -> tuple[str, TieBreak | None]:
        """Choose among candidates with equal votes now: look back to the most recent stage at which
        they differed (rules 49(2), 51(2)(a)), then draw by lot (rules 49(3), 51(2)(b))."""
        if len(tied) == 1:
            return tied[0], None
        remaining = list(tied)
        for past in reversed(self.history[:-1]):
            values = {past.get(name, 0) for name in remaining}
            if len(values) > 1:
                target = min(values) if lowest else max(values)
                remaining = [name for name in remaining if past.get(name, 0) == target]
                if len(remaining) == 1:
                    return remaining[0], "earlier_stage"
        self.lot_used = True
        return min(remaining, key=self._lot_key), "lot"

    @property
    def _continuing_set(self) -> set[str]:
        return set(self.continuing)

    def _move_pile(self, source: str, value_of: Any) -> tuple[dict[str, int], int, int]:
        """Move every parcel ``source`` holds to its next continuing preference.

        ``value_of(parcel)`` gives the new per-ballot value. Returns the units gained per candidate, the
        units on non-transferable ballots, and the units dropped (``source`` total minus both).
        """
        continuing = self._continuing_set
        gained: dict[str, int] = {}
        non_transferable = 0
        moved_total = 0
        for parcel in self.piles[source]:
            new_value = value_of(parcel)
            destination = next((name for name in parcel.ranking if name in continuing), None)
            amount = parcel.count * new_value
            moved_total += amount
            if destination is None:
                non_transferable += amount
                continue
            self.piles[destination].append(_Parcel(parcel.ranking, parcel.count, new_value))
            gained[destination] = gained.get(destination, 0) + amount
        self.piles[source] = []
        for name, amount in gained.items():
            self.votes[name] += amount
        return gained, non_transferable, moved_total

    def _record(
        self,
        *,
        action: StageAction,
        subject: str | None,
        transfer_value: int | None,
        gained: Mapping[str, int],
        non_transferable: int,
        lost: int,
        threshold_units: int,
        elected: Sequence[str],
        excluded: Sequence[str],
        tie_break: TieBreak | None,
        subject_change: int = 0,
    ) -> None:
        self.exhausted_units += non_transferable + lost
        transfers = {name: _to_decimal(gained.get(name, 0)) for name in self.standing}
        if subject is not None:
            transfers[subject] = _to_decimal(subject_change)
        self.rounds.append(
            CountRound(
                number=len(self.rounds) + 1,
                action=action,
                subject=subject,
                transfer_value=None if transfer_value is None else _to_decimal(transfer_value),
                transfers=transfers,
                non_transferable=_to_decimal(non_transferable),
                lost_to_rounding=_to_decimal(lost),
                exhausted_total=_to_decimal(self.exhausted_units),
                tallies={name: _to_decimal(self.votes[name]) for name in self.standing},
                threshold=_to_decimal(threshold_units),
                elected=tuple(elected),
                excluded=tuple(excluded),
                tie_break=tie_break,
            )
        )

    def _exclusion_round(self, *, threshold_units: Callable[[], int], elect: Callable[[], list[str]]) -> None:
        """Exclude the lowest continuing candidate, transfer their ballots, elect whoever that lets in (by
        the method's rule) and record the stage. The threshold is read after the transfer, as IRV's
        majority of the ballots still active depends on it."""
        loser, tie_break, gained, non_transferable, held = self._exclude_lowest()
        self.history.append(dict(self.votes))
        threshold = threshold_units()
        newly = elect()
        self._record(
            action="exclusion",
            subject=loser,
            transfer_value=None,
            gained=gained,
            non_transferable=non_transferable,
            lost=0,
            threshold_units=threshold,
            elected=newly,
            excluded=(loser,),
            tie_break=tie_break,
            subject_change=-held,
        )

    def _exclude_lowest(self) -> tuple[str, TieBreak | None, dict[str, int], int, int]:
        lowest_votes = min(self.votes[name] for name in self.continuing)
        tied = [name for name in self.continuing if self.votes[name] == lowest_votes]
        loser, tie_break = self._pick(tied, lowest=True)
        self.continuing.remove(loser)
        self.excluded.append(loser)
        held = self.votes[loser]
        gained, non_transferable, _ = self._move_pile(loser, lambda parcel: parcel.value)
        self.votes[loser] = 0
        return loser, tie_break, gained, non_transferable, held

    def _order_by_votes(self, names: Sequence[str]) -> list[str]:
        """Highest votes first; equal votes ordered by the rule-49 look-back, then lot."""
        ordered: list[str] = []
        pool = list(names)
        while pool:
            top = max(self.votes[name] for name in pool)
            tied = [name for name in pool if self.votes[name] == top]
            chosen, _ = self._pick(tied, lowest=False)
            ordered.append(chosen)
            pool.remove(chosen)
        return ordered

    def _result(self, method: str, quota_units: int) -> CountResult:
        return CountResult(
            method=method,
            seats=self.seats,
            candidates=self.candidates,
            withdrawn=self.withdrawn,
            valid_ballots=self.valid_ballots,
            empty_ballots=self.empty_ballots,
            quota=_to_decimal(quota_units),
            elected=tuple(self.elected),
            excluded=tuple(self.excluded),
            unfilled_seats=self.seats - len(self.elected),
            rounds=tuple(self.rounds),
            lot_seed=self.lot_seed,
            lot_used=self.lot_used,
        )

    def _fill_last_vacancies(self) -> list[str]:
        """Rule 52: once the continuing candidates are no more than the seats left, elect them all."""
        vacancies = self.seats - len(self.elected)
        if not self.continuing or len(self.continuing) > vacancies:
            return []
        newly = self._order_by_votes(self.continuing)
        for name in newly:
            self.continuing.remove(name)
            self.elected.append(name)
        return newly

    # -- STV ----------------------------------------------------------------------------------------------

    def run_stv(self) -> CountResult:
        quota = (self.valid_ballots // (self.seats + 1) + 1) * _SCALE
        surplus_pending: list[str] = []

        def elect_reaching_quota() -> list[str]:
            reaching = [name for name in self.continuing if self.votes[name] >= quota]
            newly = self._order_by_votes(reaching)[: self.seats - len(self.elected)]
            for name in newly:
                self.continuing.remove(name)
                self.elected.append(name)
                if self.votes[name] > quota:
                    surplus_pending.append(name)
            return newly

        self.history.append(dict(self.votes))
        newly = elect_reaching_quota() + self._fill_last_vacancies() if self.valid_ballots else []
        self._record(
            action="first_preferences",
            subject=None,
            transfer_value=None,
            gained={},
            non_transferable=0,
            lost=0,
            threshold_units=quota,
            elected=newly,
            excluded=(),
            tie_break=None,
        )

        while self.valid_ballots and len(self.elected) < self.seats and self.continuing:
            if surplus_pending:
                biggest = max(self.votes[name] for name in surplus_pending)
                tied = [name for name in surplus_pending if self.votes[name] == biggest]
                transferring, tie_break = self._pick(tied, lowest=False)
                surplus_pending.remove(transferring)
                total = self.votes[transferring]
                surplus = total - quota

                def weighted(parcel: _Parcel, surplus: int = surplus, total: int = total) -> int:
                    return surplus * parcel.value // total

                gained, non_transferable, moved = self._move_pile(transferring, weighted)
                lost = surplus - moved
                self.votes[transferring] = quota
                transfer_value = surplus * _SCALE // total
                self.history.append(dict(self.votes))
                newly = elect_reaching_quota()
                newly += self._fill_last_vacancies()
                self._record(
                    action="surplus",
                    subject=transferring,
                    transfer_value=transfer_value,
                    gained=gained,
                    non_transferable=non_transferable,
                    lost=lost,
                    threshold_units=quota,
                    elected=newly,
                    excluded=(),
                    tie_break=tie_break,
                    subject_change=-surplus,
                )
                continue

            self._exclusion_round(
                threshold_units=lambda: quota,
                elect=lambda: elect_reaching_quota() + self._fill_last_vacancies(),
            )

        return self._result(SCOTTISH_STV_2007, quota)

    # -- IRV ----------------------------------------------------------------------------------------------

    def run_irv(self) -> CountResult:
        first_majority = (self.valid_ballots // 2 + 1) * _SCALE

        def majority_of_active() -> int:
            return (sum(self.votes[name] for name in self.continuing) // _SCALE // 2 + 1) * _SCALE

        def elect_majority_winner() -> list[str]:
            threshold = majority_of_active()
            winners = [name for name in self.continuing if self.votes[name] >= threshold]
            if winners:
                self.continuing.remove(winners[0])
                self.elected.append(winners[0])
                return winners[:1]
            return self._fill_last_vacancies()

        self.history.append(dict(self.votes))
        threshold = majority_of_active()
        newly = elect_majority_winner() if self.valid_ballots else []
        self._record(
            action="first_preferences",
            subject=None,
            transfer_value=None,
            gained={},
            non_transferable=0,
            lost=0,
            threshold_units=threshold,
            elected=newly,
            excluded=(),
            tie_break=None,
        )
        while self.valid_ballots and not self.elected and self.continuing:
            self._exclusion_round(threshold_units=majority_of_active, elect=elect_majority_winner)
        return self._result(IRV, first_majority)
