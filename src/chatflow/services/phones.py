"""Phone numbers in E.164, parsed and validated by `phonenumbers` (libphonenumber's metadata)."""

from __future__ import annotations

import functools

import phonenumbers

from chatflow.domain.errors import InvalidPhoneError


def normalise_phone(raw: str, pointer: str = "/phone") -> str:
    """E.164 for any valid number written with its country code (`+…`, or digits as WhatsApp's
    `wa_id` gives them); anything else is an `InvalidPhoneError`."""
    text = raw.strip()
    candidate = text if text.startswith("+") else "+" + text
    try:
        e164 = _e164(candidate)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError(
            f"{raw!r} is not a phone number with a country code (like +14155550123)",
            errors=[{"pointer": pointer, "message": str(exc)}],
        ) from exc
    if e164 is None:
        raise InvalidPhoneError(
            f"{raw!r} is not a valid phone number",
            errors=[{"pointer": pointer, "message": "not a valid number for its country"}],
        )
    return e164


@functools.lru_cache(maxsize=65_536)
def _e164(candidate: str) -> str | None:
    # Every inbound WhatsApp message names its sender by `wa_id`, and the same customers write
    # again and again: validating a number against its country's metadata costs more than the
    # rest of finding the contact.
    number = phonenumbers.parse(candidate, None)
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
