"""Ids we make up come through the log lines' NHS-number mask unchanged (services.ids)."""

from __future__ import annotations

from services.ids import new_id
from services.logging import mask_nhs_numbers


def test_ids_we_make_have_no_digits_for_the_mask_to_rewrite():
    """A hex id held a run of ten digits about once in 30, and the mask rewrote it in every log line: that request's
    or call's lines no longer matched the id its caller was given."""
    assert mask_nhs_numbers("call 0000000000ab") == "call *******000ab"  # what happened to such an id
    made = [new_id() for _ in range(5000)]
    assert len(set(made)) == len(made)
    assert all(len(made_id) == 32 and made_id.isalpha() and made_id.islower() for made_id in made)
    assert all(mask_nhs_numbers(made_id) == made_id for made_id in made)
