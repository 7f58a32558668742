"""Every event contract, declared once. Importing this package registers them all."""

from services.contracts import audit, booking, desk, registry  # noqa: F401
