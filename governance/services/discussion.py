"""A proposal's discussion thread: members comment while it is open, authors edit their own comments, and
moderators (the directors in office) hide a comment with a reason.

Nothing is overwritten: a comment's text is a chain of append-only revisions and a hide is a row of its
own (governance/models.py), and every post, edit and hide appends its audit entry in the same transaction.
The entries carry the text's SHA-256, never the text, because every member reads the audit log and a
hidden comment's words are for moderators only.

Locks (governance/audit.py's order): an edit or a hide locks the comment row, the same level as the
proposal row (a comment is part of its proposal); the audit head last.
"""

from __future__ import annotations

import hashlib
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.accounts.models import User
from backend.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from governance import selectors
from governance.audit import audit_append
from governance.models import (
    CommentModeration,
    CommentRevision,
    Member,
    ProposalComment,
    ProposalStatus,
)

MAX_COMMENT_LENGTH = 4000
MAX_REASON_LENGTH = 500


def _body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _clean_text(value: object, *, field: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(_("Write something first."), details={field: [_("must not be blank")]})
    if len(text) > limit:
        raise InvalidInput(
            _("That is too long: at most %(limit)s characters.") % {"limit": limit},
            details={field: [_("at most %(limit)s characters") % {"limit": limit}]},
        )
    return text


def _commenting_member(user: User) -> Member:
    member = selectors.current_member(user)
    if member is None or not member.in_good_standing:
        raise PermissionDenied(_("Only members in good standing may comment."), code="not_eligible")
    return member


def proposal_comment_add(*, proposal_id: uuid.UUID | str, user: User, body: str) -> ProposalComment:
    """A member in good standing comments on a proposal while it is open for votes."""
    text = _clean_text(body, field="body", limit=MAX_COMMENT_LENGTH)
    member = _commenting_member(user)
    proposal = selectors.proposal_get(proposal_id)
    if proposal is None:
        raise NotFound(_("No such proposal."))
    if proposal.status != ProposalStatus.OPEN:
        raise Conflict(_("The discussion closed when the proposal was decided."), code="discussion_closed")
    with transaction.atomic():
        comment = ProposalComment.objects.create(proposal=proposal, author=member)
        CommentRevision.objects.create(comment=comment, number=1, body=text, written_at=comment.created_at)
        audit_append(
            kind="proposal.comment_added",
            payload={
                "proposal_id": proposal.id,
                "comment_id": comment.id,
                "member_id": member.id,
                "body_sha256": _body_sha256(text),
            },
        )
    return comment


def _locked_comment(comment_id: uuid.UUID | str) -> ProposalComment:
    comment = (
        ProposalComment.objects.select_for_update(of=("self",))
        .select_related("proposal")
        .filter(id=comment_id)
        .first()
    )
    if comment is None:
        raise NotFound(_("No such comment."))
    return comment


def proposal_comment_edit(*, comment_id: uuid.UUID | str, user: User, body: str) -> CommentRevision:
    """The author rewrites their own comment (not once hidden, and only while the proposal is open); the
    earlier text stays as the previous revision."""
    text = _clean_text(body, field="body", limit=MAX_COMMENT_LENGTH)
    member = selectors.current_member(user)
    with transaction.atomic():
        comment = _locked_comment(comment_id)
        if member is None or comment.author_id != member.id:
            # The same answer as for an id that does not exist: nobody learns whose comment it is.
            raise NotFound(_("No such comment."))
        if CommentModeration.objects.filter(comment=comment).exists():
            raise Conflict(
                _("A moderator hid this comment; it can no longer be edited."), code="comment_hidden"
            )
        if comment.proposal.status != ProposalStatus.OPEN:
            raise Conflict(
                _("The discussion closed when the proposal was decided."), code="discussion_closed"
            )
        latest = comment.revisions.aggregate(latest=Max("number"))["latest"] or 0
        if comment.revisions.filter(number=latest, body=text).exists():
            raise InvalidInput(
                _("That is what the comment already says."), details={"body": [_("unchanged")]}
            )
        revision = CommentRevision.objects.create(
            comment=comment, number=latest + 1, body=text, written_at=timezone.now()
        )
        audit_append(
            kind="proposal.comment_edited",
            payload={
                "proposal_id": comment.proposal_id,
                "comment_id": comment.id,
                "member_id": member.id,
                "revision": revision.number,
                "body_sha256": _body_sha256(text),
            },
        )
    return revision


def proposal_comment_hide(*, comment_id: uuid.UUID | str, user: User, reason: str) -> CommentModeration:
    """A moderator (a director in office) hides a comment; members then read the reason instead."""
    why = _clean_text(reason, field="reason", limit=MAX_REASON_LENGTH)
    member = selectors.current_member(user)
    if not selectors.is_director(member):
        raise PermissionDenied(
            _("Only the board's directors moderate the discussion."), code="not_a_moderator"
        )
    assert member is not None  # a director is a member
    with transaction.atomic():
        comment = _locked_comment(comment_id)
        try:
            with transaction.atomic():
                moderation = CommentModeration.objects.create(comment=comment, moderator=member, reason=why)
        except IntegrityError:
            raise Conflict(_("This comment is hidden already."), code="comment_hidden") from None
        audit_append(
            kind="proposal.comment_hidden",
            payload={
                "proposal_id": comment.proposal_id,
                "comment_id": comment.id,
                "moderator_id": member.id,
                "reason": why,
            },
        )
    return moderation
