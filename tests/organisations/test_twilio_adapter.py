"""The Twilio adapter at its HTTP boundary (a local server in place of Twilio): what a refusal means for
the outbox. A 4xx other than 429 answers the same next time (permanent: the row gives up at once); a 5xx
or 429 is retried; missing credentials send nothing and say which."""

from __future__ import annotations

import pytest

from backend.notifications.channels import ChannelError
from backend.notifications.delivery import notification_deliver
from backend.notifications.models import NotificationStatus
from backend.notifications.services import notify
from backend.notifications.sms import twilio_provider
from tests.factories import RiderFactory

pytestmark = pytest.mark.django_db


def _one_sms(rider):
    (row,) = notify(user_id=rider.id, event="trip_booked_for_you", context={"organisation": "Clinic"})
    return row


def test_a_message_twilio_refuses_is_given_up_and_one_it_cannot_take_now_is_retried(twilio):
    rider = RiderFactory()
    twilio.answer_status = 400
    refused = notification_deliver(notification_id=_one_sms(rider).id)
    assert refused.status == NotificationStatus.FAILED and "21211" in refused.last_error
    twilio.answer_status = 503
    later = notification_deliver(notification_id=_one_sms(rider).id)
    assert later.status == NotificationStatus.PENDING and "HTTP 503" in later.last_error
    assert len(twilio.received) == 2 and all(sms.form["To"] == rider.phone for sms in twilio.received)


def test_missing_credentials_send_nothing(twilio, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    with pytest.raises(ChannelError) as missing:
        twilio_provider()
    assert missing.value.permanent and "TWILIO_AUTH_TOKEN" in str(missing.value)
    assert twilio.received == []
