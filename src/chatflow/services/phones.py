"""Phone numbers in E.164, parsed and validated by `phonenumbers` (libphonenumber's metadata)."""

from __future__ import annotations

import phonenumbers

from chatflow.domain.errors import InvalidPhoneError


def normalise_phone(raw: str, pointer: str = "/phone") -> str:
    """E.164 for any valid number written with its country code (`+…`, or digits as WhatsApp's
    `wa_id` gives them); anything else is an `InvalidPhoneError`."""
    text = raw.strip()
    candidate = text if text.startswith("+") else "+" + text
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError(
            f"{raw!r} is not a phone number with a country code (like +14155550123)",
            errors=[{"pointer": pointer, "message": str(exc)}],
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(
            f"{raw!r} is not a valid phone number",
            errors=[{"pointer": pointer, "message": "not a valid number for its country"}],
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
