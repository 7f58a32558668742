"""The operator tool: local stack, seeding, benchmarks. No service imports it."""
