"""The members' portal in a real headless Chromium on a phone-sized screen, against a live ASGI server: a
member signs in through the one sign-in page, comments on a bylaw proposal, votes and sees the receipt;
ranks candidates (a number, then a drag) and sees the count once the election closes; reads their capital
account. One browser session, few page loads."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from governance import selectors, services
from governance.models import DividendStatement, ProposalComment, VoteReceipt
from tests.factories import TEST_PASSWORD, StaffFactory
from tests.governance.test_board_page import CHROMIUM_ARGS
from tests.live_server import live_asgi_server  # noqa: F401 - the fixture
from tests.portal.conftest import close_voting, open_voting

PHONE = {"width": 390, "height": 844}


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _capital_from_a_dividend(members, complete_trip) -> None:
    """A patronage dividend passed by the members: 60% of each share of it goes to capital accounts."""
    for member in members:
        with transaction.atomic():  # settled in the completion's transaction, as in dispatch
            complete_trip(member.user, pay_minor=2000, fare_minor=2500)
    today = timezone.localdate()
    dividend = services.proposal_create(
        user=members[0].user,
        kind="dividend",
        title="Patronage dividend",
        body="",
        payload={
            "surplus": {"amount": 40000, "currency": "USD"},
            "period_start": (today - timedelta(days=1)).isoformat(),
            "period_end": today.isoformat(),
            "basis": "trips",
            "cash_share": "0.40",
        },
        closes_at=timezone.now() + timedelta(hours=1),
    )
    for member in members[:3]:
        services.proposal_vote(proposal_id=dividend.id, user=member.user, choice="yes")


@pytest.mark.browser
def test_a_member_discusses_votes_ranks_and_reads_their_capital_on_a_phone(
    live_asgi_server,  # noqa: F811
    make_member,
    complete_trip,
    bylaw_proposal,
    monkeypatch,
):
    from playwright.sync_api import expect, sync_playwright

    me = make_member(name="Amina Diallo")
    alice, bob, carol = (make_member(name=name) for name in ("Alice Okafor", "Bob Reyes", "Carol Singh"))
    _capital_from_a_dividend([me, alice, bob, carol], complete_trip)
    my_capital = DividendStatement.objects.get(member=me).capital_minor  # 6000: 60% of a quarter of 400.00
    bylaw = bylaw_proposal(alice, title="General meetings may meet online")
    now = timezone.now()
    election = services.election_create(
        user=StaffFactory(),
        title="Board election 2026",
        seats=1,
        nominations_close_at=now + timedelta(days=1),
        voting_closes_at=now + timedelta(days=2),
    )
    for candidate in (alice, bob, carol):
        services.election_nominate(
            election_id=election.id, user=candidate.user, statement=f"{candidate.user.name} for the board."
        )
    open_voting(election)
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = live_asgi_server.url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
            page.set_default_timeout(15000)

            # Sign in through the one sign-in page, which sends the member back where they were going.
            page.goto(f"{base}/members/")
            expect(page).to_have_url(re.compile(r"/account/login/\?next=(/|%2F)members(/|%2F)$"))
            page.fill("input[name=username]", me.user.phone)
            page.fill("input[name=password]", TEST_PASSWORD)
            page.click("#sign-in")
            expect(page).to_have_url(f"{base}/members/")
            assert _fits_the_screen(page)

            # Comment on the bylaw proposal, then vote, and read the receipt (shown this once).
            page.get_by_role("link", name="General meetings may meet online").click()
            expect(page.locator("#proposal-title")).to_have_text("General meetings may meet online")
            page.fill("#comment-body", "Yes: drivers on night shifts can take part from the car.")
            page.click("#comment-submit")
            expect(page.locator("#comments")).to_contain_text("drivers on night shifts can take part")
            expect(page.locator("#comments")).to_contain_text("Amina Diallo")
            page.check("#choice-yes")
            page.click("#vote-submit")
            receipt = page.locator("#receipt-code").inner_text().strip()
            expect(page.locator("#result-yes")).to_have_text("1")
            assert _fits_the_screen(page)

            # Rank candidates: Carol first by number; then drag Bob above Alice, which ranks him second.
            page.goto(f"{base}/members/elections/{election.id}/")
            expect(page.locator("#election-phase")).to_have_attribute("data-phase", "voting")
            page.select_option(f"#rank-{carol.id}", "1")
            items = page.locator("#ranking .rank-item")
            expect(items.first).to_have_attribute("data-member", str(carol.id))
            page.locator("#ballot-submit").scroll_into_view_if_needed()  # the drag happens on screen
            handle = page.locator(f'.rank-item[data-member="{bob.id}"] .handle').bounding_box()
            target = page.locator(f'.rank-item[data-member="{alice.id}"]').bounding_box()
            page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
            page.mouse.down()
            page.mouse.move(handle["x"] + handle["width"] / 2, target["y"] + 4, steps=8)
            page.mouse.up()
            expect(page.locator(f"#rank-{bob.id}")).to_have_value("2")
            expect(page.locator(f"#rank-{alice.id}")).to_have_value("")
            expect(items.nth(1)).to_have_attribute("data-member", str(bob.id))
            assert _fits_the_screen(page)
            page.click("#ballot-submit")
            ballot_receipt = page.locator("#receipt-code").inner_text().strip()

            # The others vote, voting closes and the count runs (as the beat's task would).
            for voter, ranking in ((alice, [alice, bob]), (bob, [bob, alice]), (carol, [carol, alice])):
                services.election_ballot_cast(
                    election_id=election.id, user=voter.user, ranking=[str(m.id) for m in ranking]
                )
            close_voting(election)
            services.election_close(election_id=election.id)
            page.goto(f"{base}/members/elections/{election.id}/")
            expect(page.locator("#election-phase")).to_have_attribute("data-phase", "closed")
            expect(page.locator("#elected")).to_contain_text("Carol Singh")
            expect(page.locator("#stage-1")).to_contain_text("Alice Okafor")
            expect(page.locator("#ballot-record li")).to_have_count(4)
            expect(page.locator("#ballot-record")).to_contain_text("Carol Singh › Bob Reyes")

            # My capital account, on the narrowest phones too.
            page.set_viewport_size({"width": 360, "height": 740})
            page.get_by_role("link", name="My membership").click()
            expect(page.locator("#capital-account")).to_have_text(
                f"{my_capital // 100}.{my_capital % 100:02d} USD"
            )
            assert _fits_the_screen(page)
        finally:
            browser.close()

    assert VoteReceipt.objects.get(proposal=bylaw, member=me).receipt_hash == services.receipt_hash(receipt)
    assert ProposalComment.objects.get(proposal=bylaw).author == me
    record = selectors.ballot_record(election)
    assert [str(carol.id), str(bob.id)] in record["ballots"]
    assert services.receipt_hash(ballot_receipt) in {
        entry.payload["receipt_sha256"] for entry in selectors.audit_entries().filter(kind="election.ballot")
    }
