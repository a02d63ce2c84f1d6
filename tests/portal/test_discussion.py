"""A proposal's discussion: comments, the author's edits kept as history, moderators hiding with a reason,
each audited; who sees what; bad input and a throttle on posting."""

from __future__ import annotations

import pytest
from django.test import Client

from governance import services
from governance.models import AuditEntry, CommentRevision, ProposalComment

pytestmark = pytest.mark.django_db


def _browser(member) -> Client:
    browser = Client()
    browser.force_login(member.user)
    return browser


def _comment(browser: Client, proposal, body: str):
    return browser.post(f"/members/proposals/{proposal.id}/comments", {"body": body})


def test_a_member_comments_and_the_comment_is_audited_by_its_hash(make_member, bylaw_proposal):
    import hashlib

    member = make_member()
    proposal = bylaw_proposal(member)
    answer = _comment(_browser(member), proposal, "  Online meetings help drivers on night shifts.  ")
    comment = ProposalComment.objects.get(proposal=proposal)
    assert answer.status_code == 302
    assert answer["Location"].endswith(f"#comment-{comment.id}")
    assert comment.author == member
    assert list(comment.revisions.values_list("number", "body")) == [
        (1, "Online meetings help drivers on night shifts.")
    ]
    entry = AuditEntry.objects.get(kind="proposal.comment_added")
    assert entry.payload["comment_id"] == str(comment.id)
    assert (
        entry.payload["body_sha256"]
        == hashlib.sha256(b"Online meetings help drivers on night shifts.").hexdigest()
    )
    assert "night shifts" not in str(entry.payload)  # the audit log is every member's: no text in it
    page = _browser(make_member()).get(f"/members/proposals/{proposal.id}/").content.decode()
    assert "Online meetings help drivers on night shifts." in page


def test_the_author_edits_and_every_version_is_kept(make_member, bylaw_proposal):
    member = make_member()
    proposal = bylaw_proposal(member)
    browser = _browser(member)
    _comment(browser, proposal, "First thought.")
    comment = ProposalComment.objects.get()
    assert browser.get(f"/members/comments/{comment.id}/edit").status_code == 200
    answer = browser.post(f"/members/comments/{comment.id}/edit", {"body": "Second thought."})
    assert answer.status_code == 302
    browser.post(f"/members/comments/{comment.id}/edit", {"body": "Third thought."})

    assert list(
        CommentRevision.objects.filter(comment=comment).order_by("number").values_list("number", "body")
    ) == [
        (1, "First thought."),
        (2, "Second thought."),
        (3, "Third thought."),
    ]
    edits = AuditEntry.objects.filter(kind="proposal.comment_edited").order_by("sequence")
    assert [entry.payload["revision"] for entry in edits] == [2, 3]
    page = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    shown = page.split(f'id="comment-{comment.id}"')[1]
    assert "Third thought." in shown
    assert "2 earlier versions" in shown and "First thought." in shown


def test_revisions_cannot_be_rewritten_in_the_database(make_member, bylaw_proposal):
    from django.db import DatabaseError, transaction

    member = make_member()
    comment = services.proposal_comment_add(
        proposal_id=bylaw_proposal(member).id, user=member.user, body="Said once."
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        CommentRevision.objects.filter(comment=comment).update(body="Never said.")
    with pytest.raises(DatabaseError), transaction.atomic():
        CommentRevision.objects.filter(comment=comment).delete()
    assert CommentRevision.objects.get(comment=comment).body == "Said once."


def test_nobody_edits_another_member_s_comment(make_member, bylaw_proposal):
    author, other = make_member(), make_member()
    proposal = bylaw_proposal(author)
    comment = services.proposal_comment_add(proposal_id=proposal.id, user=author.user, body="Mine.")
    browser = _browser(other)
    assert browser.get(f"/members/comments/{comment.id}/edit").status_code == 404
    assert browser.post(f"/members/comments/{comment.id}/edit", {"body": "Yours now."}).status_code == 404
    assert list(comment.revisions.values_list("body", flat=True)) == ["Mine."]
    page = browser.get(f"/members/proposals/{proposal.id}/").content.decode()
    assert f"/members/comments/{comment.id}/edit" not in page


def test_a_moderator_hides_a_comment_with_a_reason_and_members_read_the_reason(
    make_member, make_director, bylaw_proposal
):
    director, author, reader = make_director(), make_member(), make_member()
    proposal = bylaw_proposal(author)
    comment = services.proposal_comment_add(
        proposal_id=proposal.id, user=author.user, body="Call 555-0100 for cheap insurance!"
    )
    answer = _browser(director).post(f"/members/comments/{comment.id}/hide", {"reason": "Advertising"})
    assert answer.status_code == 302

    entry = AuditEntry.objects.get(kind="proposal.comment_hidden")
    assert entry.payload == {
        "proposal_id": str(proposal.id),
        "comment_id": str(comment.id),
        "moderator_id": str(director.id),
        "reason": "Advertising",
    }
    for who in (reader, author):  # the author too: hidden text is for moderators only
        page = _browser(who).get(f"/members/proposals/{proposal.id}/").content.decode()
        assert "cheap insurance" not in page
        assert "Advertising" in page
    assert "cheap insurance" in _browser(director).get(f"/members/proposals/{proposal.id}/").content.decode()

    # A hidden comment stays hidden and its author can no longer rewrite it.
    author_browser = _browser(author)
    answer = author_browser.post(f"/members/comments/{comment.id}/edit", {"body": "Something else."})
    assert answer.status_code == 409
    assert comment.revisions.count() == 1
    again = _browser(director).post(f"/members/comments/{comment.id}/hide", {"reason": "Twice"})
    assert again.status_code == 302
    assert AuditEntry.objects.filter(kind="proposal.comment_hidden").count() == 1


def test_only_a_moderator_hides_and_a_reason_is_required(make_member, make_director, bylaw_proposal):
    member, director = make_member(), make_director()
    proposal = bylaw_proposal(member)
    comment = services.proposal_comment_add(proposal_id=proposal.id, user=member.user, body="Hello.")
    assert (
        _browser(member).post(f"/members/comments/{comment.id}/hide", {"reason": "Mine"}).status_code == 404
    )
    page = _browser(member).get(f"/members/proposals/{proposal.id}/").content.decode()
    assert "/hide" not in page
    _browser(director).post(f"/members/comments/{comment.id}/hide", {"reason": "   "})
    assert not hasattr(ProposalComment.objects.get(id=comment.id), "moderation")
    assert not AuditEntry.objects.filter(kind="proposal.comment_hidden").exists()


@pytest.mark.parametrize(("body", "message"), [("", "Write something first"), ("x" * 4001, "too long")])
def test_a_blank_or_overlong_comment_is_refused(make_member, bylaw_proposal, body, message):
    member = make_member()
    proposal = bylaw_proposal(member)
    answer = _comment(_browser(member), proposal, body)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not ProposalComment.objects.exists()


def test_the_discussion_closes_when_the_proposal_is_decided(make_member, bylaw_proposal):
    member = make_member()
    proposal = bylaw_proposal(member)
    comment = services.proposal_comment_add(proposal_id=proposal.id, user=member.user, body="Before.")
    services.proposal_vote(
        proposal_id=proposal.id, user=member.user, choice="yes"
    )  # the only voter decides it
    browser = _browser(member)
    assert _comment(browser, proposal, "After.").status_code == 409
    assert browser.post(f"/members/comments/{comment.id}/edit", {"body": "Later."}).status_code == 409
    assert ProposalComment.objects.count() == 1


def test_posting_is_throttled(make_member, bylaw_proposal, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "portal_comment": "2/min",
        },
    }
    member = make_member()
    proposal = bylaw_proposal(member)
    browser = _browser(member)
    assert _comment(browser, proposal, "One.").status_code == 302
    assert _comment(browser, proposal, "Two.").status_code == 302
    answer = _comment(browser, proposal, "Three.")
    assert answer.status_code == 429
    assert "too fast" in answer.content.decode()
    assert "Three." in answer.content.decode()  # kept in the form, not lost
    assert ProposalComment.objects.count() == 2
    # Another member has their own allowance.
    assert _comment(_browser(make_member()), proposal, "Mine.").status_code == 302
