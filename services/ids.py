"""Ids we make up (requests, calls, holds, appointments, callback tasks): 128 random bits written as 32 letters.

Not hex: ids go into log lines, and the NHS-number mask (services.logging) rewrites any run of ten digits in a line,
whatever it belongs to. About one hex id in 30 holds such a run, and the log lines of that request or call then
no longer matched the id its caller was given."""

from __future__ import annotations

import os

# Hex digits 0-9 written as the letters g-p: the id has no digits at all.
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def new_id() -> str:
    return os.urandom(16).hex().translate(_DIGITS_AS_LETTERS)
