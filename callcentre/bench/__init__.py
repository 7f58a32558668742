"""Benchmarks of the whole centre: `rush` (the 8am rush through the gateway), `limits` (this machine's raw
ceilings for the same work) and the arithmetic their reports share. They print figures; nothing here asserts
on speed."""
