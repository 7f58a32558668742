"""Each practice's change feed: every booking-side change, in commit order, with a stable cursor."""
