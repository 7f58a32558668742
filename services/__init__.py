"""The shared kernel: mechanisms every service needs (settings, database, events, outbox/inbox, app factory,
auth, logging). Business rules live in the services, never here."""
