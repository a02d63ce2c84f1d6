"""The members' portal at /members/ (docs/portal.md): server-rendered pages for every member.

Thin, like the API: a page reads through the selectors (governance/selectors.py; a driver's money and
documents through dispatch's and compliance's reads, shaped in presenters.py) and writes through the same
governance services the API calls, which decide who may do what on which proposal or election; a refusal
comes back as the page with the service's message and its HTTP status. Every form posts with Django's CSRF
token, and ids in a path are looked up only as far as the viewer may see them.

A vote's or ballot's receipt is never stored anywhere (the database keeps only its hash), not even in the
session for a redirect: the page answering the vote shows it, once. Reloading that page posts again, and
the service answers that the member has voted.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backend.errors import DomainError, InvalidInput
from dispatch.compliance.hvfhv import parse_month
from dispatch.figures import coop_figures, current_month, figures_months, last_complete_month
from dispatch.money.receipts import format_money
from governance import selectors, services
from governance.models import Election, MemberStatus, Proposal, ProposalKind, VoteChoice, Voters
from governance.selectors import ProposalRecord
from governance.services.discussion import MAX_COMMENT_LENGTH, MAX_REASON_LENGTH
from mobile_api.members import presenters
from mobile_api.members.guards import Viewer, comment_allowed, member_page, not_found

OPEN_SHOWN = 100
DECIDED_SHOWN = 50
ELECTIONS_SHOWN = 50
STATEMENTS_SHOWN = 50


def _error_message(error: DomainError) -> str:
    return str(error.message)


# --- Home -----------------------------------------------------------------------------------------------


@require_GET
@member_page
def home(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    open_records = selectors.proposal_records(
        list(selectors.proposals_open()[:OPEN_SHOWN]), viewer=viewer.member
    )
    to_vote = [
        record
        for record in open_records
        if record.my_vote is not None and record.my_vote.eligible and not record.my_vote.voted
    ]
    elections = [
        record
        for record in selectors.election_records(
            list(selectors.elections_all()[:ELECTIONS_SHOWN]), viewer=None
        )
        if record.status in ("nominating", "voting")
    ]
    return render(
        request,
        "members/home.html",
        {
            "viewer": viewer,
            "section": "home",
            "open_count": len(open_records),
            "to_vote": to_vote,
            "elections": [(record, presenters.election_phase_label(record.status)) for record in elections],
        },
    )


# --- Proposals ------------------------------------------------------------------------------------------


def _proposal_row(record: ProposalRecord) -> dict[str, Any]:
    proposal = record.proposal
    return {
        "proposal": proposal,
        "kind": presenters.proposal_kind_label(proposal.kind),
        "status": presenters.proposal_status_label(proposal.status),
        "voted": record.my_vote is not None and record.my_vote.voted,
        "may_vote": record.my_vote is not None and record.my_vote.eligible and not record.my_vote.voted,
    }


@require_GET
@member_page
def proposal_list(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    open_page = list(selectors.proposals_open()[:OPEN_SHOWN])
    decided_page = list(selectors.proposals_decided()[:DECIDED_SHOWN])
    records = selectors.proposal_records(open_page + decided_page, viewer=viewer.member)
    rows = [_proposal_row(record) for record in records]
    return render(
        request,
        "members/proposals.html",
        {
            "viewer": viewer,
            "section": "proposals",
            "open_rows": rows[: len(open_page)],
            "decided_rows": rows[len(open_page) :],
        },
    )


def _vote_refusal(proposal: Proposal, record: ProposalRecord, viewer: Viewer) -> str:
    """Why this member may not vote on this proposal now ("" when they may)."""
    if record.my_vote is not None and record.my_vote.voted:
        return _("You have voted on this proposal. Your vote is secret: only its receipt links it to you.")
    if proposal.status != "open" or timezone.now() >= proposal.closes_at:
        return _("Voting on this proposal has closed.")
    if proposal.voters == Voters.BOARD and not (record.my_vote and record.my_vote.eligible):
        return _("Only the board's directors vote on fare policy; every member may discuss it here.")
    if viewer.member.status == MemberStatus.SUSPENDED:
        return _("Your membership is suspended: only members in good standing vote.")
    if record.my_vote is None or not record.my_vote.eligible:
        return _(
            "You are not on this proposal's voter roll: it lists the members in good standing on the day "
            "it opened."
        )
    return ""


def _proposal_page(
    request: HttpRequest,
    viewer: Viewer,
    proposal: Proposal,
    *,
    status: int = 200,
    vote_error: str = "",
    comment_error: str = "",
    comment_text: str = "",
    receipt: str | None = None,
) -> HttpResponse:
    record = selectors.proposal_record(proposal, viewer=viewer.member)
    refusal = _vote_refusal(proposal, record, viewer)
    board_votes = []
    if record.board_votes is not None:
        names = selectors.member_names([vote.member_id for vote in record.board_votes])
        board_votes = [
            {"name": names.get(vote.member_id, "?"), "choice": presenters.choice_label(vote.choice)}
            for vote in record.board_votes
        ]
    result = selectors.proposal_result(proposal)
    discussion_open = proposal.status == "open"
    return render(
        request,
        "members/proposal.html",
        {
            "viewer": viewer,
            "section": "proposals",
            "proposal": proposal,
            "kind": presenters.proposal_kind_label(proposal.kind),
            "status_label": presenters.proposal_status_label(proposal.status),
            "is_bylaw": proposal.kind == ProposalKind.BYLAW,
            "result": result,
            "decided": proposal.status != "open",
            "board_votes": board_votes,
            "choices": [(choice, presenters.choice_label(choice)) for choice in VoteChoice.values],
            "can_vote": not refusal,
            "vote_refusal": refusal,
            "vote_error": vote_error,
            "receipt": receipt,
            "receipt_sha256": services.receipt_hash(receipt) if receipt else "",
            "thread": selectors.proposal_thread(proposal, viewer=viewer.member, moderator=viewer.moderator),
            "discussion_open": discussion_open,
            "can_comment": discussion_open and viewer.member.in_good_standing,
            "comment_error": comment_error,
            "comment_text": comment_text,
            "max_comment": MAX_COMMENT_LENGTH,
            "max_reason": MAX_REASON_LENGTH,
        },
        status=status,
    )


@require_GET
@member_page
def proposal_detail(request: HttpRequest, viewer: Viewer, proposal_id: uuid.UUID) -> HttpResponse:
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        return not_found(request)
    return _proposal_page(request, viewer, proposal)


@require_POST
@member_page
def proposal_vote(request: HttpRequest, viewer: Viewer, proposal_id: uuid.UUID) -> HttpResponse:
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        return not_found(request)
    try:
        receipt = services.proposal_vote(
            proposal_id=proposal.id, user=viewer.user, choice=request.POST.get("choice", "")
        )
    except DomainError as error:
        proposal.refresh_from_db()
        return _proposal_page(
            request, viewer, proposal, status=error.status, vote_error=_error_message(error)
        )
    proposal.refresh_from_db()  # the vote may have decided it
    return _proposal_page(request, viewer, proposal, receipt=receipt)


def _throttled(request: HttpRequest) -> str:
    wait = comment_allowed(request)
    if wait is None:
        return ""
    return _("You are posting too fast; try again in %(seconds)s seconds.") % {"seconds": int(wait) or 1}


@require_POST
@member_page
def comment_add(request: HttpRequest, viewer: Viewer, proposal_id: uuid.UUID) -> HttpResponse:
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        return not_found(request)
    text = request.POST.get("body", "")
    too_fast = _throttled(request)
    if too_fast:
        return _proposal_page(
            request, viewer, proposal, status=429, comment_error=too_fast, comment_text=text
        )
    try:
        comment = services.proposal_comment_add(proposal_id=proposal.id, user=viewer.user, body=text)
    except DomainError as error:
        return _proposal_page(
            request,
            viewer,
            proposal,
            status=error.status,
            comment_error=_error_message(error),
            comment_text=text,
        )
    messages.success(request, _("Your comment is posted."))
    return redirect(reverse("members:proposal", args=[proposal.id]) + f"#comment-{comment.id}")


@require_http_methods(["GET", "POST"])
@member_page
def comment_edit(request: HttpRequest, viewer: Viewer, comment_id: uuid.UUID) -> HttpResponse:
    record = selectors.comment_of_author(comment_id, author=viewer.member)
    if record is None:
        return not_found(request)  # someone else's comment looks like one that does not exist
    proposal = record.comment.proposal
    error, status, text = "", 200, record.body
    if request.method == "POST":
        text = request.POST.get("body", "")
        error = _throttled(request)
        status = 429 if error else 200
        if not error:
            try:
                services.proposal_comment_edit(comment_id=record.comment.id, user=viewer.user, body=text)
            except DomainError as refused:
                error, status = _error_message(refused), refused.status
            else:
                messages.success(
                    request, _("Your comment is updated; the earlier wording stays in its history.")
                )
                return redirect(
                    reverse("members:proposal", args=[proposal.id]) + f"#comment-{record.comment.id}"
                )
    return render(
        request,
        "members/comment_edit.html",
        {
            "viewer": viewer,
            "section": "proposals",
            "record": record,
            "proposal": proposal,
            "text": text,
            "error": error,
            "max_comment": MAX_COMMENT_LENGTH,
        },
        status=status,
    )


@require_POST
@member_page
def comment_hide(request: HttpRequest, viewer: Viewer, comment_id: uuid.UUID) -> HttpResponse:
    comment = selectors.comment_get(comment_id)
    if comment is None or not viewer.moderator:
        return not_found(request)
    try:
        services.proposal_comment_hide(
            comment_id=comment.id, user=viewer.user, reason=request.POST.get("reason", "")
        )
    except DomainError as error:
        messages.error(request, _error_message(error))
    else:
        messages.success(request, _("The comment is hidden; members read your reason instead."))
    return redirect(reverse("members:proposal", args=[comment.proposal_id]) + f"#comment-{comment.id}")


# --- Elections ------------------------------------------------------------------------------------------


@require_GET
@member_page
def election_list(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    records = selectors.election_records(
        list(selectors.elections_all()[:ELECTIONS_SHOWN]), viewer=viewer.member
    )
    return render(
        request,
        "members/elections.html",
        {
            "viewer": viewer,
            "section": "elections",
            "rows": [(record, presenters.election_phase_label(record.status)) for record in records],
        },
    )


def ranking_from_form(data: dict[str, str]) -> list[str]:
    """The ranked candidates (member ids, most preferred first) from the form's `rank-<member id>` number
    fields; blank means not ranked. The service checks the ids are the election's candidates."""
    ranked: list[tuple[int, str]] = []
    for key, raw in data.items():
        if not key.startswith("rank-") or not str(raw).strip():
            continue
        try:
            number = int(str(raw).strip())
        except ValueError:
            number = 0
        if not 1 <= number <= 100:
            raise InvalidInput(
                _("Give each candidate you rank a number: 1 for your first choice, 2 for your next."),
                details={"ranking": ["ranks are whole numbers from 1"]},
            )
        ranked.append((number, key.removeprefix("rank-")))
    numbers = [number for number, _member in ranked]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput(
            _("Two candidates have the same number: give each one a different number."),
            details={"ranking": ["repeated rank"]},
        )
    if not ranked:
        raise InvalidInput(_("Rank at least one candidate."), details={"ranking": ["must not be empty"]})
    return [member_id for _number, member_id in sorted(ranked)]


def _election_page(
    request: HttpRequest,
    viewer: Viewer,
    election: Election,
    *,
    status: int = 200,
    error: str = "",
    submitted: dict[str, str] | None = None,
    statement: str = "",
    receipt: str | None = None,
) -> HttpResponse:
    record = selectors.election_record(election, viewer=viewer.member)
    phase = record.status
    candidacy = selectors.candidacy_of(election, viewer.member)
    withdrawn = candidacy is not None and getattr(candidacy, "withdrawal", None) is not None
    standing = candidacy is not None and not withdrawn
    names = selectors.member_names([candidate.member_id for candidate in record.candidates])
    candidates = [
        {
            "member_id": str(candidate.member_id),
            "name": names.get(candidate.member_id, "?"),
            "statement": candidate.statement,
            "mine": candidate.member_id == viewer.member.id,
            "rank": (submitted or {}).get(f"rank-{candidate.member_id}", ""),
        }
        for candidate in record.candidates
    ]
    ballot = record.my_ballot
    may_vote = (
        phase == "voting"
        and ballot is not None
        and ballot.eligible
        and not ballot.voted
        and viewer.member.in_good_standing
    )
    ballot_refusal = ""
    if phase == "voting" and not may_vote:
        if ballot is not None and ballot.voted:
            ballot_refusal = _("You have voted in this election.")
        elif not viewer.member.in_good_standing:
            ballot_refusal = _("Your membership is suspended: only members in good standing vote.")
        else:
            ballot_refusal = _(
                "You are not on this election's voter roll: it lists the members in good standing on the "
                "day it was called."
            )
    context: dict[str, Any] = {
        "viewer": viewer,
        "section": "elections",
        "election": election,
        "phase": phase,
        "phase_label": presenters.election_phase_label(phase),
        "method": presenters.count_method_label(record.method),
        "candidates": candidates,
        "rank_numbers": list(range(1, len(candidates) + 1)),
        "standing": standing,
        "withdrawn": withdrawn,
        "can_stand": phase == "nominating" and candidacy is None and viewer.member.in_good_standing,
        "can_withdraw": phase == "nominating" and standing,
        "may_vote": may_vote,
        "ballot_refusal": ballot_refusal,
        "error": error,
        "statement": statement,
        "receipt": receipt,
        "receipt_sha256": services.receipt_hash(receipt) if receipt else "",
    }
    if phase == "closed":
        elected, stages = presenters.count_stages(election)
        record_document = selectors.ballot_record(election)
        context.update(
            elected=elected,
            stages=stages,
            result=election.result or {},
            ballots=presenters.ballots_by_name(record_document),
        )
    return render(request, "members/election.html", context, status=status)


@require_GET
@member_page
def election_detail(request: HttpRequest, viewer: Viewer, election_id: uuid.UUID) -> HttpResponse:
    election = selectors.election_get(election_id)
    if election is None:
        return not_found(request)
    return _election_page(request, viewer, election)


@require_POST
@member_page
def election_stand(request: HttpRequest, viewer: Viewer, election_id: uuid.UUID) -> HttpResponse:
    election = selectors.election_get(election_id)
    if election is None:
        return not_found(request)
    statement = request.POST.get("statement", "")
    try:
        services.election_nominate(election_id=election.id, user=viewer.user, statement=statement.strip())
    except DomainError as error:
        return _election_page(
            request, viewer, election, status=error.status, error=_error_message(error), statement=statement
        )
    messages.success(request, _("You are standing in this election."))
    return redirect("members:election", election_id=election.id)


@require_POST
@member_page
def election_withdraw(request: HttpRequest, viewer: Viewer, election_id: uuid.UUID) -> HttpResponse:
    election = selectors.election_get(election_id)
    if election is None:
        return not_found(request)
    try:
        services.election_withdraw(election_id=election.id, user=viewer.user)
    except DomainError as error:
        return _election_page(request, viewer, election, status=error.status, error=_error_message(error))
    messages.success(request, _("You have withdrawn: your name is off this election's ballot."))
    return redirect("members:election", election_id=election.id)


@require_POST
@member_page
def election_ballot(request: HttpRequest, viewer: Viewer, election_id: uuid.UUID) -> HttpResponse:
    election = selectors.election_get(election_id)
    if election is None:
        return not_found(request)
    submitted = {key: value for key, value in request.POST.items() if key.startswith("rank-")}
    try:
        ranking = ranking_from_form(submitted)
        receipt = services.election_ballot_cast(election_id=election.id, user=viewer.user, ranking=ranking)
    except DomainError as error:
        election.refresh_from_db()
        return _election_page(
            request, viewer, election, status=error.status, error=_error_message(error), submitted=submitted
        )
    return _election_page(request, viewer, election, receipt=receipt)


# --- My membership --------------------------------------------------------------------------------------


@require_GET
@member_page
def membership(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = viewer.member
    detail = selectors.membership_detail(member)
    currency = member.currency
    patronage = detail["patronage"]
    statements = [
        {
            "statement": statement,
            "total": format_money(statement.total_minor, statement.currency),
            "cash": format_money(statement.cash_minor, statement.currency),
            "capital": format_money(statement.capital_minor, statement.currency),
        }
        for statement in selectors.statements_of(viewer.user)[:STATEMENTS_SHOWN]
    ]
    summary = selectors.membership_summary(viewer.user) or {}
    rate = Decimal(str(settings.ROCHDALE_SHARE_INSTALMENT_RATE)) * 100
    return render(
        request,
        "members/membership.html",
        {
            "viewer": viewer,
            "section": "membership",
            "member": member,
            "status_label": {
                MemberStatus.ACTIVE: _("Active, in good standing"),
                MemberStatus.SUSPENDED: _("Suspended"),
            }.get(member.status, member.status),
            "share_price": format_money(member.share_price_minor, currency),
            "share_paid": format_money(detail["paid"]["amount"], currency),
            "share_outstanding": format_money(selectors.share_outstanding_minor(member), currency),
            "share_fully_paid": selectors.share_outstanding_minor(member) == 0,
            "instalment_rate": f"{rate.normalize():f}",
            "capital_account": format_money(detail["capital_account"]["amount"], currency),
            "patronage_year": patronage["year"],
            "patronage_trips": patronage["trips"],
            "patronage_hours": f"{patronage['engaged_seconds'] / 3600:.1f}",
            "patronage_earnings": format_money(patronage["net_earnings"]["amount"], currency),
            "statements": statements,
            "director": summary.get("director", False),
        },
    )


# --- My work (drivers) ----------------------------------------------------------------------------------


@require_GET
@member_page
def work(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not viewer.driver:
        return render(request, "members/work.html", {"viewer": viewer, "section": "work"}, status=403)
    return render(
        request,
        "members/work.html",
        {
            "viewer": viewer,
            "section": "work",
            "weeks": presenters.weekly_earnings(driver_id=viewer.user.pk),
            "payouts": presenters.payout_rows(driver_id=viewer.user.pk),
            "documents": presenters.documents_due(user=viewer.user),
        },
    )


# --- The co-op's numbers --------------------------------------------------------------------------------


def month_from_query(raw: str | None, *, months: list[date]) -> date:
    """`YYYY-MM` as the month's first day, as the figures endpoint reads it (never a month not begun).
    None given: the last complete month if it had trips, else the newest that had."""
    if not raw:
        last = last_complete_month()
        return last if last in months or not months else months[0]
    try:
        month = parse_month(raw)
    except ValueError:
        raise InvalidInput(
            _("Choose a month as year and month, for example %(example)s.") % {"example": "2026-10"},
            details={"month": ["must be YYYY-MM"]},
        ) from None
    if month > current_month():
        raise InvalidInput(
            _("There are no figures yet for a month that has not begun."), details={"month": ["not begun"]}
        )
    return month


@require_GET
@member_page
def numbers(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    months = figures_months()
    status, error = 200, ""
    try:
        month = month_from_query(request.GET.get("month"), months=months)
    except InvalidInput as refused:
        status, error = 400, _error_message(refused)
        month = month_from_query(None, months=months)
    figures = coop_figures(month=month)
    return render(
        request,
        "members/numbers.html",
        {
            "viewer": viewer,
            "section": "numbers",
            "month": month,
            "month_value": month.strftime("%Y-%m"),
            "months": [(m.strftime("%Y-%m"), m) for m in months],
            "complete": bool(figures.get("complete", True)),
            "min_drivers": figures.get("min_drivers"),
            "rows": presenters.figure_rows(figures),
            "deciles": presenters.offer_decile_shares(figures),
            "error": error,
        },
        status=status,
    )
