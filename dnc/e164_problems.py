"""Why a raw phone number cannot be normalised (``dnc.e164``): the reasons, the
``phonenumbers`` errors each comes from, and the message a caller is shown."""

from __future__ import annotations

from phonenumbers import NumberParseException, ValidationResult

REASONS = (
    "not_a_number",
    "invalid_country_code",
    "too_short",
    "too_long",
    "invalid_number",
    "ambiguous_country_code",
)
"""Every reason ``PhoneNumberProblem`` can carry."""

PARSE_REASONS = {  # phonenumbers.parse errors
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}
POSSIBLE_REASONS = {  # is_possible_number_with_reason results
    ValidationResult.INVALID_COUNTRY_CODE: "invalid_country_code",
    ValidationResult.TOO_SHORT: "too_short",
    ValidationResult.TOO_LONG: "too_long",
}
_MESSAGES = {
    "not_a_number": "is not a phone number",
    "invalid_country_code": "has no valid country code (write it with + and the country code, "
    "or send a region)",
    "too_short": "has too few digits for its country",
    "too_long": "has too many digits for its country (a number with its country code needs "
    "a + in front)",
    "invalid_number": "is not a valid number in its country's numbering plan",
    "ambiguous_country_code": "is a valid number both as written in its region and with its "
    "leading digits read as the country code: write it with + and the country code",
}


class PhoneNumberProblem(ValueError):
    """A raw phone number cannot be normalised; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(_MESSAGES[reason])
