"""agent-desk-svc: agents, calls, callbacks, the dashboard, the audit trail and the agents' web UI."""
