"""NHS numbers: normalise (spaces, hyphens) and check the modulus-11 digit with the maintained `nhs-number`
library. `NhsNumber` is a pydantic type for request bodies and query parameters."""

from __future__ import annotations

import re
from typing import Annotated

import nhs_number
from pydantic import AfterValidator

_SEPARATORS = re.compile(r"[\s-]")
_TEN_ASCII_DIGITS = re.compile(r"^[0-9]{10}$")


def normalise_nhs_number(value: str) -> str:
    """'943 476 5919' -> '9434765919'; raises ValueError with a reason a person can read."""
    digits = _SEPARATORS.sub("", str(value))
    if not _TEN_ASCII_DIGITS.match(digits):  # str.isdigit() would let other scripts' digits through
        raise ValueError("an NHS number is 10 digits")
    if not nhs_number.is_valid(digits):
        raise ValueError("the NHS number's check digit is wrong")
    return digits


def is_valid_nhs_number(value: str) -> bool:
    try:
        normalise_nhs_number(value)
        return True
    except ValueError:
        return False


NhsNumber = Annotated[str, AfterValidator(normalise_nhs_number)]
