"""booking-svc's own copy of the registry data it needs (practices, clinicians, slot-type rules, registrations),
kept from registry events so booking keeps working while practice-registry-svc is down."""
