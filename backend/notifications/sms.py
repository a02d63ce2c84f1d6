"""The Twilio SMS adapter (`ROCHDALE_SMS_PROVIDER=twilio`), on Twilio's REST API over httpx.

One call per message: `POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`,
`From` and `Body`, HTTP basic auth with the account SID and auth token; Twilio answers 201 with the
message's `sid`, which is the provider reference the outbox records. Settings, read when a message is sent:
`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM_NUMBER` (E.164, or a messaging service's sender),
`TWILIO_API_BASE` (default Twilio's own; tests and staging point it at a local server).

What a failure means for the outbox (backend/notifications/services.py retries a ChannelError unless it is
`permanent`): a network error, a timeout, 429 and 5xx are worth retrying; Twilio's other 4xx (a number that
is not a mobile, an unverified number, our credentials) will answer the same next time, so they are
permanent. Missing settings are permanent too: the row records why nothing was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from django.conf import settings

from backend.notifications.channels import ChannelError, register_sms_provider

DEFAULT_API_BASE = "https://api.twilio.com"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TwilioSmsProvider:
    account_sid: str
    auth_token: str
    from_number: str
    api_base: str = DEFAULT_API_BASE
    timeout_s: float = TIMEOUT_S

    @property
    def messages_url(self) -> str:
        return f"{self.api_base.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def send(self, *, to: str, body: str) -> str:
        try:
            answer = httpx.post(
                self.messages_url,
                data={"To": to, "From": self.from_number, "Body": body},
                auth=(self.account_sid, self.auth_token),
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ChannelError(f"twilio: {type(exc).__name__}: {exc}") from exc
        if answer.status_code in (200, 201):
            reference = _json(answer).get("sid")
            if not isinstance(reference, str) or not reference:
                raise ChannelError("twilio: the answer names no message sid")
            return reference
        detail = _json(answer)
        message = (
            f"twilio: HTTP {answer.status_code} code {detail.get('code', '?')}: "
            f"{detail.get('message', answer.text[:200])}"
        )
        retryable = answer.status_code == 429 or answer.status_code >= 500
        raise ChannelError(message, permanent=not retryable)


def _json(answer: httpx.Response) -> dict:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def twilio_provider() -> TwilioSmsProvider:
    """The adapter for the configured account; ChannelError (permanent) when a setting is missing."""
    values = {
        name: getattr(settings, name, "") or ""
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
    }
    missing = sorted(name for name, value in values.items() if not value)
    if missing:
        raise ChannelError(f"twilio: {', '.join(missing)} not set", permanent=True)
    return TwilioSmsProvider(
        account_sid=values["TWILIO_ACCOUNT_SID"],
        auth_token=values["TWILIO_AUTH_TOKEN"],
        from_number=values["TWILIO_FROM_NUMBER"],
        api_base=getattr(settings, "TWILIO_API_BASE", "") or DEFAULT_API_BASE,
    )


register_sms_provider("twilio", twilio_provider)
