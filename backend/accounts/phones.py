"""Phone numbers are the sign-in identity, stored in E.164 so one person has one spelling."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def normalize_phone(raw: str) -> str:
    """Parse a phone number written in E.164 (with its leading +) and return its canonical E.164 form."""
    if not isinstance(raw, str) or not raw.strip().startswith("+") or len(raw) > 32:
        raise ValidationError(_("Enter the phone number in international E.164 form, e.g. +12125550100."))
    try:
        parsed = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("This is not a phone number in E.164 form.")) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError(_("This phone number has the wrong number of digits for its country."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
