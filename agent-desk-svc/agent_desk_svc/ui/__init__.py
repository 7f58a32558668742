"""The agents' and supervisors' web UI: server-rendered pages whose scripts call the public API through the
gateway (signed in by the `cc_session` cookie, protected by the `cc_csrf` double-submit token)."""
