"""Rotas: a practice's sessions for a window of dates, turned into slots."""
