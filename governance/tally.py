"""Deciding a proposal from its vote counts: quorum, threshold, and when it may be decided early.

Pure Python, no Django. The proposal service counts the votes (yes, no, abstain) and the eligible voters,
and asks ``decide`` for the status the contract publishes at ``GET .../proposals/{id}/result``.

Terms:

- ``eligible``: the seats of the board (``voters="board"``) or the active members (``voters="members"``)
  when the proposal opened.
- Quorum counts every vote cast, abstentions included: ``yes + no + abstain`` must be *more than*
  ``quorum * eligible`` when ``quorum_strict``, else *at least* that.
- Threshold counts yes against yes + no only (abstentions do not count either way): ``yes / (yes + no)``
  must be *more than* ``threshold`` when ``threshold_strict``, else *at least* it. With no yes or no votes
  at all, nothing passes.

Rules per kind (``RULES``):

- ``fare_policy`` (the board; docs/contract.md "Fare policy and governance"): quorum of more than half the
  seats, more yes than no. Decided at ``closes_at``; or earlier, passed, as soon as the yes votes alone are
  more than half of all seats (``early="yes_majority_of_all"``). It is never failed before ``closes_at``: the
  contract names no early failure, and a board member may still be on their way to vote.
- ``bylaw`` (all members): at least a quarter of the members vote, and at least two-thirds of yes + no are
  yes (the usual supermajority for amending the rules of a co-operative).
- ``dividend`` and ``general`` (all members): at least a tenth of the members vote, more yes than no.

Member kinds use ``early="when_certain"``: decided before ``closes_at`` only once no way the remaining
eligible voters could vote (or not vote) would change the outcome. Votes cannot be changed, so:

- passing is certain when the quorum is met already *and* the threshold would still be met if every voter
  yet to vote voted no;
- failing is certain when even every voter yet to vote voting yes would not meet both quorum and threshold.

These defaults are the project's choice for the bylaws (documented here); a co-operative that sets other
fractions builds its own ``DecisionRule``. Fractions are exact (``Fraction``): two-thirds is not a decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = [
    "KINDS",
    "RULES",
    "Decision",
    "DecisionRule",
    "decide",
    "quorum_met",
    "rule_for_kind",
    "threshold_met",
]

Voters = Literal["board", "members"]
EarlyDecision = Literal["yes_majority_of_all", "when_certain", "never"]
Status = Literal["open", "passed", "failed"]


@dataclass(frozen=True)
class DecisionRule:
    """How a kind of proposal is decided. ``quorum`` and ``threshold`` accept Fraction, Decimal, int or a
    string such as ``"2/3"`` or ``"0.25"`` and are held as exact ``Fraction``s."""

    quorum: Fraction
    threshold: Fraction
    voters: Voters
    quorum_strict: bool = False
    threshold_strict: bool = True
    early: EarlyDecision = "when_certain"

    def __post_init__(self) -> None:
        for name in ("quorum", "threshold"):
            raw = getattr(self, name)
            if isinstance(raw, float):
                raise TypeError(f"{name} must be exact (Fraction, Decimal, int or str), not a float")
            value = Fraction(raw)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {raw}")
            object.__setattr__(self, name, value)
        if self.voters not in ("board", "members"):
            raise ValueError(f"voters must be 'board' or 'members', got {self.voters!r}")
        if self.early not in ("yes_majority_of_all", "when_certain", "never"):
            raise ValueError(f"unknown early decision rule {self.early!r}")


RULES: dict[str, DecisionRule] = {
    "fare_policy": DecisionRule(
        quorum=Fraction(1, 2),
        threshold=Fraction(1, 2),
        voters="board",
        quorum_strict=True,
        threshold_strict=True,
        early="yes_majority_of_all",
    ),
    "bylaw": DecisionRule(
        quorum=Fraction(1, 4),
        threshold=Fraction(2, 3),
        voters="members",
        quorum_strict=False,
        threshold_strict=False,
    ),
    "dividend": DecisionRule(quorum=Fraction(1, 10), threshold=Fraction(1, 2), voters="members"),
    "general": DecisionRule(quorum=Fraction(1, 10), threshold=Fraction(1, 2), voters="members"),
}
KINDS: tuple[str, ...] = tuple(RULES)


@dataclass(frozen=True)
class Decision:
    """The published result of a proposal (``status``, counts, ``quorum_met``) and why."""

    status: Status
    yes: int
    no: int
    abstain: int
    eligible: int
    quorum_met: bool
    decided_early: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        """The contract's result body: status, yes, no, abstain, eligible, quorum_met."""
        return {
            "status": self.status,
            "yes": self.yes,
            "no": self.no,
            "abstain": self.abstain,
            "eligible": self.eligible,
            "quorum_met": self.quorum_met,
        }


def rule_for_kind(kind: str) -> DecisionRule:
    """The default rule for a proposal kind; ``ValueError`` for an unknown kind."""
    try:
        return RULES[kind]
    except KeyError:
        raise ValueError(f"unknown proposal kind {kind!r}; expected one of {', '.join(KINDS)}") from None


def _exceeds(value: int, fraction: Fraction, of: int, *, strict: bool) -> bool:
    # value > fraction * of, in integers: value * den > num * of
    left = value * fraction.denominator
    right = fraction.numerator * of
    return left > right if strict else left >= right


def quorum_met(rule: DecisionRule, *, cast: int, eligible: int) -> bool:
    """Whether ``cast`` votes (abstentions included) make the quorum of ``eligible``."""
    return _exceeds(cast, rule.quorum, eligible, strict=rule.quorum_strict)


def threshold_met(rule: DecisionRule, *, yes: int, no: int) -> bool:
    """Whether ``yes`` against ``no`` meets the threshold; with no yes or no votes, it does not."""
    if yes + no == 0:
        return False
    return _exceeds(yes, rule.threshold, yes + no, strict=rule.threshold_strict)


def decide(
    rule: DecisionRule,
    *,
    eligible: int,
    yes: int,
    no: int,
    abstain: int,
    closed: bool,
) -> Decision:
    """The status of a proposal under ``rule`` (see the module doc).

    ``closed`` is true once ``closes_at`` has passed. Raises ``ValueError`` for negative counts or more
    votes than eligible voters.
    """
    for name, value in (("eligible", eligible), ("yes", yes), ("no", no), ("abstain", abstain)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    cast = yes + no + abstain
    if cast > eligible:
        raise ValueError(f"{cast} votes cast but only {eligible} eligible voters")

    has_quorum = quorum_met(rule, cast=cast, eligible=eligible)

    def result(status: Status, *, early: bool, reason: str) -> Decision:
        return Decision(status, yes, no, abstain, eligible, has_quorum, early, reason)

    passes_now = has_quorum and threshold_met(rule, yes=yes, no=no)
    if closed:
        if passes_now:
            return result("passed", early=False, reason="voting closed with quorum and threshold met")
        if not has_quorum:
            return result("failed", early=False, reason="voting closed without a quorum")
        return result("failed", early=False, reason="voting closed with the threshold not met")

    if rule.early == "yes_majority_of_all":
        if _exceeds(yes, Fraction(1, 2), eligible, strict=True):
            return result("passed", early=True, reason="yes votes alone are more than half of all voters")
    elif rule.early == "when_certain":
        remaining = eligible - cast
        if passes_now and threshold_met(rule, yes=yes, no=no + remaining):
            return result("passed", early=True, reason="passes whatever the remaining voters do")
        could_pass = quorum_met(rule, cast=eligible, eligible=eligible) and threshold_met(
            rule, yes=yes + remaining, no=no
        )
        if not could_pass:
            return result("failed", early=True, reason="cannot pass whatever the remaining voters do")
    return result("open", early=False, reason="voting is open")
