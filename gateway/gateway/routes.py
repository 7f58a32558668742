"""Where each request goes and who may send it: the one routing table and the one authorisation table.

`UPSTREAM_BY_PREFIX` maps the first path segment after /api/v1 to a service (API.md, "Routing").
`ROUTES` is the authorisation table: method + path pattern -> roles, read top to bottom, first match wins. Every
prefix ends with a catch-all, so an endpoint a service adds later gets its prefix's default (admin only for
registry data) until it is listed here. Services still check practice scope themselves (`ensure_acts_for`);
the gateway's `own` check (the ODS code in the path or query) is the first fence, not the only one.

Pattern syntax: literal segments, `{name}` for one segment, and a final `**` for zero or more segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl

API_PREFIX = "/api/v1/"

UPSTREAM_BY_PREFIX: dict[str, str] = {
    "auth": "desk", "agents": "desk", "calls": "desk", "callbacks": "desk", "dashboard": "desk", "stream": "desk",
    "audit": "desk",
    "practices": "registry", "patients": "registry", "pcns": "registry",
    "rotas": "booking", "slots": "booking", "holds": "booking", "appointments": "booking", "feed": "booking",
}
UI_UPSTREAM = "desk"  # `/` and every non-API path: the agent UI

AGENT, SUPERVISOR, ADMIN, PRACTICE = "agent", "supervisor", "admin", "practice"
ROLES = (AGENT, SUPERVISOR, ADMIN, PRACTICE)
STAFF = frozenset({AGENT, SUPERVISOR, ADMIN})
SUPERVISORS = frozenset({SUPERVISOR, ADMIN})
ADMINS = frozenset({ADMIN})
STAFF_OR_PRACTICE = STAFF | {PRACTICE}
ADMIN_OR_PRACTICE = frozenset({ADMIN, PRACTICE})
ANY = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class Timeout(Enum):
    DEFAULT = "default"
    BULK = "bulk"  # whole-list uploads: rotas, registered patients
    STREAM = "stream"  # server-sent events: no read timeout


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: str
    roles: frozenset[str] = frozenset()
    public: bool = False  # no credentials needed (rate-limited per client IP instead)
    own: str | None = None  # path placeholder naming the practice a practice key must own
    own_query: str | None = None  # query parameter(s) naming practices a practice key must own
    timeout: Timeout = Timeout.DEFAULT
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.pattern.strip("/").split("/")))

    @property
    def prefix(self) -> str:
        return self.segments[2]

    @property
    def upstream(self) -> str:
        return UPSTREAM_BY_PREFIX[self.prefix]

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        """The placeholders' values when this route matches, else None."""
        if method not in self.methods:
            return None
        pattern = self.segments
        bound: dict[str, str] = {}
        for i, part in enumerate(pattern):
            if part == "**":
                return bound
            if i >= len(segments):
                return None
            if part[0] == "{":
                bound[part[1:-1]] = segments[i]
            elif part != segments[i]:
                return None
        return bound if len(segments) == len(pattern) else None


def _r(methods: str | frozenset[str], pattern: str, roles: frozenset[str] = frozenset(), **kw) -> Route:
    return Route(frozenset({methods}) if isinstance(methods, str) else methods, pattern, roles, **kw)


ROUTES: tuple[Route, ...] = (
    # --- agent-desk-svc
    _r("POST", "/api/v1/auth/token", public=True),
    _r(ANY, "/api/v1/auth/**", STAFF),
    _r(frozenset({"GET", "POST"}), "/api/v1/agents", SUPERVISORS),
    _r("PUT", "/api/v1/agents/{username}/state", STAFF),  # self or a supervisor: agent-desk-svc decides
    _r("GET", "/api/v1/agents/**", STAFF),
    _r(ANY, "/api/v1/agents/**", SUPERVISORS),
    _r(ANY, "/api/v1/calls/**", STAFF),
    _r("POST", "/api/v1/callbacks", STAFF_OR_PRACTICE),  # a practice for its own patients: the body says which
    _r(ANY, "/api/v1/callbacks/**", STAFF),
    _r("GET", "/api/v1/dashboard/**", STAFF),
    _r("GET", "/api/v1/stream/**", STAFF, timeout=Timeout.STREAM),
    _r("GET", "/api/v1/audit/**", SUPERVISORS),
    _r(ANY, "/api/v1/dashboard/**", ADMINS),
    _r(ANY, "/api/v1/stream/**", ADMINS),
    _r(ANY, "/api/v1/audit/**", ADMINS),
    # --- practice-registry-svc: agents read, admins write, a practice keeps its own data current
    _r("GET", "/api/v1/practices", STAFF),
    _r("POST", "/api/v1/practices", ADMINS),
    # A practice may list and revoke its own keys (one that suspects a leak should not have to wait for us).
    _r(frozenset({"GET", "DELETE"}), "/api/v1/practices/{ods}/api-keys/**", ADMIN_OR_PRACTICE, own="ods"),
    _r(ANY, "/api/v1/practices/{ods}/api-keys/**", ADMINS),
    _r("PATCH", "/api/v1/practices/{ods}", ADMIN_OR_PRACTICE, own="ods"),
    _r("PUT", "/api/v1/practices/{ods}/clinicians", ADMIN_OR_PRACTICE, own="ods"),
    _r("PUT", "/api/v1/practices/{ods}/slot-types", ADMIN_OR_PRACTICE, own="ods"),
    _r("PUT", "/api/v1/practices/{ods}/patients", ADMIN_OR_PRACTICE, own="ods", timeout=Timeout.BULK),
    _r("GET", "/api/v1/practices/{ods}/**", STAFF_OR_PRACTICE, own="ods"),
    _r(ANY, "/api/v1/practices/**", ADMINS),
    _r("GET", "/api/v1/patients/**", STAFF),  # every lookup is audited by the registry
    _r(ANY, "/api/v1/patients/**", ADMINS),
    _r("GET", "/api/v1/pcns/**", STAFF),
    _r(ANY, "/api/v1/pcns/**", ADMINS),
    # --- booking-svc: staff book for any practice, a practice key for its own
    _r("PUT", "/api/v1/rotas/{ods}", ADMIN_OR_PRACTICE, own="ods", timeout=Timeout.BULK),
    _r("GET", "/api/v1/rotas/{ods}/**", STAFF_OR_PRACTICE, own="ods"),
    _r(ANY, "/api/v1/rotas/{ods}/**", ADMIN_OR_PRACTICE, own="ods"),
    _r(ANY, "/api/v1/rotas/**", ADMINS),
    _r("GET", "/api/v1/slots/**", STAFF_OR_PRACTICE, own_query="practice"),
    _r(ANY, "/api/v1/slots/**", ADMIN_OR_PRACTICE),  # changing slots themselves is the practice's business
    _r(ANY, "/api/v1/holds/**", STAFF_OR_PRACTICE),
    _r("POST", "/api/v1/appointments/{appointment_id}/status", ADMIN_OR_PRACTICE),
    _r("GET", "/api/v1/appointments/**", STAFF_OR_PRACTICE, own_query="practice"),
    _r(ANY, "/api/v1/appointments/**", STAFF_OR_PRACTICE),
    _r("GET", "/api/v1/feed/{ods}/**", ADMIN_OR_PRACTICE, own="ods"),
    _r(ANY, "/api/v1/feed/**", ADMINS),
)

_BY_PREFIX: dict[str, tuple[Route, ...]] = {
    prefix: tuple(r for r in ROUTES if r.prefix == prefix) for prefix in UPSTREAM_BY_PREFIX
}


def split_api_path(path: str) -> list[str] | None:
    """Segments of an /api/v1/... path without the trailing slash, or None if it is not one we route."""
    if not path.startswith(API_PREFIX):
        return None
    segments = path.rstrip("/").split("/")[1:]
    if len(segments) < 3 or segments[2] not in UPSTREAM_BY_PREFIX:
        return None
    for s in segments:
        if s in ("", ".", ".."):
            return None
    return segments


def match_route(method: str, segments: list[str]) -> tuple[Route, dict[str, str]] | None:
    # HEAD and OPTIONS read: they are allowed where GET is.
    rule_method = "GET" if method in ("HEAD", "OPTIONS") else method
    for route in _BY_PREFIX[segments[2]]:
        bound = route.match(rule_method, segments)
        if bound is not None:
            return route, bound
    return None


def practices_in_query(query_string: bytes, name: str) -> list[str]:
    if name.encode() not in query_string:
        return []
    return [v for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True) if k == name]
