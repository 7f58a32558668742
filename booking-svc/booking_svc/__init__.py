"""booking-svc: rotas, slots, holds, appointments and the practices' change feed."""
