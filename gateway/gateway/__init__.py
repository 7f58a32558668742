"""The API gateway: the one front door."""
