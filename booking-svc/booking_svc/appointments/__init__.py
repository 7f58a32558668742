"""Appointments: booking, cancelling, rescheduling and recording what happened."""
