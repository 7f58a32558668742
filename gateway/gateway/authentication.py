"""Who is calling: staff JWTs (bearer header or the UI's session cookie) and practice API keys; and the signed
identity the gateway hands to services in their place."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

import aiohttp
import jwt
import orjson

from gateway.metrics import API_KEY_LOOKUPS, UPSTREAM_ERRORS
from gateway.problems import UpstreamUnavailable
from gateway.settings import Settings
from gateway.upstreams import Upstream
from services.auth import IDENTITY_HEADER, STAFF_ROLES, Principal, sign_identity
from services.errors import Unauthorized
from services.logging import get_logger

log = get_logger(__name__)

GATEWAY_PRINCIPAL = Principal(subject="gateway", role="service")
API_KEY_VERIFY_PATH = "/internal/v1/api-keys/verify"
STAFF_VERIFY_PATH = "/internal/v1/staff/verify"
STAFF_REFUSALS = frozenset({"account_disabled", "role_changed", "unknown_account"})
_CACHE_LIMIT = 20_000
_JWKS_MIN_REFRESH_SECONDS = 30.0


def _bad_token(detail: str = "The token is not valid.") -> Unauthorized:
    return Unauthorized(detail, code="invalid_token")


class StaffTokens:
    """Verifies staff JWTs. A token verified once is remembered until it expires: tokens are signed and
    short-lived, so this saves the signature check on every request without changing any decision. Tokens
    agent-desk-svc issued (HMAC) are also checked against the account's current state by `accounts`."""

    def __init__(self, settings: Settings, accounts: StaffAccounts | None = None) -> None:
        self.accounts = accounts
        self.secret = settings.jwt_secret
        self.algorithms = frozenset(settings.jwt_algorithms)
        self.audience = settings.jwt_audience
        self.issuer = settings.oidc_issuer
        self.role_claim = settings.jwt_role_claim
        self.leeway = settings.jwt_leeway_seconds
        self._jwks_url = settings.jwks_url
        self._jwks: jwt.PyJWKClient | None = None
        self._keys: dict[str | None, object] = {}
        self._keys_fetched_at = 0.0
        self._jwks_lock = asyncio.Lock()
        self._cache: dict[str, tuple[Principal, float, bool]] = {}

    async def verify(self, token: str) -> Principal:
        hit = self._cache.get(token)
        if hit is not None and hit[1] > time.time():
            if hit[2] and self.accounts is not None:
                await self.accounts.check(hit[0])
            return hit[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _bad_token() from exc
        alg = header.get("alg")
        # The algorithm comes from the token, so only ones configured are accepted ("none" never is), and an
        # HMAC algorithm only ever uses the shared secret, never a public key (no algorithm confusion).
        if not isinstance(alg, str) or alg not in self.algorithms or alg.lower() == "none":
            raise _bad_token("The token's algorithm is not accepted.")
        key = self.secret if alg.startswith("HS") else await self._public_key(token, header.get("kid"))
        try:
            claims = jwt.decode(token, key, algorithms=[alg], audience=self.audience,
                                issuer=self.issuer if not alg.startswith("HS") else None, leeway=self.leeway,
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise _bad_token() from exc
        role = _staff_role(claims.get(self.role_claim))
        if role is None:
            raise _bad_token("The token carries no staff role.")
        principal = Principal(subject=str(claims["sub"]), role=role)
        issued_by_desk = alg.startswith("HS")  # an identity provider's (RS/ES) tokens are the provider's to revoke
        if issued_by_desk and self.accounts is not None:
            await self.accounts.check(principal)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = (principal, float(claims["exp"]), issued_by_desk)
        return principal

    async def _public_key(self, token: str, kid: str | None):  # noqa: ANN202 - a cryptography key object
        key = self._keys.get(kid)
        if key is not None:
            return key
        # An unknown key id means the provider rotated keys, or a forgery: refetch the key set, but at most every
        # `_JWKS_MIN_REFRESH_SECONDS`, so made-up key ids cannot turn into a flood of requests to the provider.
        now = time.monotonic()
        if self._keys and now - self._keys_fetched_at < _JWKS_MIN_REFRESH_SECONDS:
            raise _bad_token("The token's signing key is not known.")
        client = await self._jwks_client()
        try:
            # PyJWKClient fetches with blocking urllib: keep it off the event loop.
            signing_keys = await asyncio.to_thread(client.get_signing_keys, True)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("jwks.unavailable", error=str(exc))
            raise UpstreamUnavailable("The identity provider's keys cannot be fetched; retry shortly.",
                                      headers={"Retry-After": "5"}, upstream="identity-provider") from exc
        except jwt.PyJWTError as exc:
            raise _bad_token("The identity provider's key set is not usable.") from exc
        self._keys = {k.key_id: k.key for k in signing_keys}
        self._keys_fetched_at = now
        key = self._keys.get(kid)
        if key is None:
            raise _bad_token("The token's signing key is not known.")
        return key

    async def _jwks_client(self) -> jwt.PyJWKClient:
        if self._jwks is not None:
            return self._jwks
        async with self._jwks_lock:
            if self._jwks is None:
                url = self._jwks_url or await asyncio.to_thread(_discover_jwks_uri, self.issuer)
                if not url:
                    raise _bad_token("No key set is configured for this algorithm.")
                self._jwks = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=5)
        return self._jwks


def _discover_jwks_uri(issuer: str | None) -> str | None:
    if not issuer:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=5) as response:  # noqa: S310
            return orjson.loads(response.read()).get("jwks_uri")
    except OSError as exc:
        raise UpstreamUnavailable("The identity provider cannot be reached; retry shortly.",
                                  headers={"Retry-After": "5"}, upstream="identity-provider") from exc


def _staff_role(value: object) -> str | None:
    if isinstance(value, str):
        return value if value in STAFF_ROLES else None
    if isinstance(value, (list, tuple)):  # identity providers often send a list of roles: take the highest
        for role in ("admin", "supervisor", "agent"):
            if role in value:
                return role
    return None


@dataclass(slots=True)
class _Cached:
    principal: Principal | None  # None: the registry said the key is not valid
    expires_at: float


class ApiKeys:
    """Checks practice API keys with the registry, remembering answers for a few seconds (valid keys for
    `api_key_cache_seconds` <= 15, so a revoked key stops working within 30 s; unknown keys for less)."""

    def __init__(self, settings: Settings, registry: Upstream, identity: IdentityTokens) -> None:
        self.registry = registry
        self.identity = identity
        self.ttl = settings.api_key_cache_seconds
        self.negative_ttl = settings.api_key_negative_cache_seconds
        self.timeout = aiohttp.ClientTimeout(total=max(2.0, settings.connect_timeout_seconds * 2))
        self._cache: dict[bytes, _Cached] = {}
        self._inflight: dict[bytes, asyncio.Future[Principal | None]] = {}

    async def verify(self, key: str) -> Principal:
        if not key or len(key) > 512 or not key.isprintable():
            raise Unauthorized("The API key is not valid.", code="invalid_api_key")
        digest = hashlib.sha256(key.encode()).digest()  # keys are not kept in memory in the clear
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit.expires_at > now:
            API_KEY_LOOKUPS.labels("hit").inc()
            principal = hit.principal
        else:
            pending = self._inflight.get(digest)
            if pending is not None:  # many requests with one key at once: ask the registry once
                principal = await asyncio.shield(pending)
            else:
                future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
                self._inflight[digest] = future
                try:
                    principal = await self._ask_registry(key)
                    future.set_result(principal)
                except BaseException as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
                    raise
                finally:
                    del self._inflight[digest]
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                ttl = self.ttl if principal is not None else self.negative_ttl
                self._cache[digest] = _Cached(principal, time.monotonic() + ttl)
        if principal is None:
            raise Unauthorized("The API key is not valid.", code="invalid_api_key")
        return principal

    async def _ask_registry(self, key: str) -> Principal | None:
        API_KEY_LOOKUPS.labels("miss").inc()
        upstream = self.registry
        if not upstream.breaker.allow():
            UPSTREAM_ERRORS.labels(upstream.name, "circuit_open").inc()
            raise _registry_down(upstream.breaker.retry_after())
        headers = {IDENTITY_HEADER: self.identity.token_for(GATEWAY_PRINCIPAL).decode(),
                   "Content-Type": "application/json"}
        try:
            async with upstream.session.post(upstream.base_url + API_KEY_VERIFY_PATH, data=orjson.dumps({"key": key}),
                                             headers=headers, timeout=self.timeout) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            upstream.breaker.record_failure()
            UPSTREAM_ERRORS.labels(upstream.name, "unavailable").inc()
            API_KEY_LOOKUPS.labels("error").inc()
            log.warning("api_key.registry_unavailable", error_type=type(exc).__name__)
            raise _registry_down(2) from exc
        upstream.breaker.record_success()
        if status == 200:
            try:
                answer = orjson.loads(body)
                return Principal(subject=str(answer["key_id"]), role="practice",
                                 ods_code=str(answer["ods_code"]).upper())
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise _registry_down(2) from exc
        if status in (400, 401, 403, 422):
            return None
        API_KEY_LOOKUPS.labels("error").inc()
        log.warning("api_key.registry_error", status=status)
        raise _registry_down(2)


class StaffAccounts:
    """Asks agent-desk-svc whether a staff token's account is still active with the token's role, remembering
    each answer for `staff_status_cache_seconds` (<= 15): disabling or demoting someone takes effect within
    seconds, not when their shift-long token expires.

    When the desk cannot answer, the last answer stands, and a token never checked before is let through: the
    desk being down must not stop every agent at 8am (hazard log H14/H16); that case is logged.

    An answer in the last `REFRESH_AHEAD` of its period is still used, and the desk is asked again meanwhile: an
    agent at work never waits for the question (at the 8am rush 1 request in 70 did, for up to 200 ms). No answer
    older than the period is ever used, so a disabled account is refused as soon as before."""

    REFRESH_AHEAD = 0.3

    def __init__(self, settings: Settings, desk: Upstream, identity: IdentityTokens) -> None:
        self.desk = desk
        self.identity = identity
        self.ttl = settings.staff_status_cache_seconds
        self.timeout = aiohttp.ClientTimeout(total=max(2.0, settings.connect_timeout_seconds * 2))
        self._cache: dict[tuple[str, str], _Verdict] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[str | None]] = {}

    async def check(self, principal: Principal) -> None:
        key = (principal.subject, principal.role)
        hit = self._cache.get(key)
        left = hit.expires_at - time.monotonic() if hit is not None else 0.0
        if left <= 0:
            refusal = await asyncio.shield(self._ask(principal, key, hit))
        else:
            refusal = hit.refusal
            if left < self.ttl * self.REFRESH_AHEAD:
                self._ask(principal, key, hit)  # the answer replaces this one when it comes
        if refusal is not None:
            raise Unauthorized("This account is disabled or its role has changed; sign in again.", code=refusal)

    def _ask(self, principal: Principal, key: tuple[str, str], stale: _Verdict | None) -> asyncio.Task[str | None]:
        """The desk's answer for `key`, asked once however many requests want it (the UI's parallel requests of
        one agent) and finished even if the request that asked goes away."""
        pending = self._inflight.get(key)
        if pending is None:
            pending = self._inflight[key] = asyncio.ensure_future(self._ask_desk(principal, stale))
            pending.add_done_callback(lambda done: self._asked(key, done))
        return pending

    def _asked(self, key: tuple[str, str], done: asyncio.Task[str | None]) -> None:
        del self._inflight[key]
        if not done.cancelled() and done.exception() is not None:  # nobody may be waiting: say so here
            log.warning("staff_status.check_failed", error_type=type(done.exception()).__name__)

    async def _ask_desk(self, principal: Principal, stale: _Verdict | None) -> str | None:
        """The refusal code, or None when the account may act; remembered for the cache period."""
        upstream = self.desk
        headers = {IDENTITY_HEADER: self.identity.token_for(GATEWAY_PRINCIPAL).decode(),
                   "Content-Type": "application/json"}
        body = orjson.dumps({"username": principal.subject, "role": principal.role})
        status, answer = None, b""
        if upstream.breaker.allow():
            try:
                async with upstream.session.post(upstream.base_url + STAFF_VERIFY_PATH, data=body, headers=headers,
                                                 timeout=self.timeout) as response:
                    status, answer = response.status, await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                upstream.breaker.record_failure()
            else:
                upstream.breaker.record_success()
        code = _problem_code(answer) if status == 401 else None
        if status == 200:
            refusal = None
        elif code in STAFF_REFUSALS:
            refusal = code
        else:  # down, slow, or not able to answer (e.g. an older desk during a rolling upgrade): no verdict
            refusal = stale.refusal if stale is not None else None
            log.warning("staff_status.unavailable", status=status, fallback="last answer" if stale else "allow")
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(principal.subject, principal.role)] = _Verdict(refusal, time.monotonic() + self.ttl)
        return refusal


def _problem_code(body: bytes) -> str | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer.get("code") if isinstance(answer, dict) else None


@dataclass(slots=True)
class _Verdict:
    refusal: str | None  # None: the account may act
    expires_at: float


def _registry_down(retry_after: int) -> UpstreamUnavailable:
    return UpstreamUnavailable("API keys cannot be checked right now (the registry is unavailable); retry shortly.",
                               headers={"Retry-After": str(retry_after)}, upstream="registry")


class IdentityTokens:
    """Signs the identity passed to services, reusing each principal's token for half its lifetime (services
    cache verified tokens too, so reuse saves work on both sides)."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.identity_secret
        self.ttl = settings.identity_ttl_seconds
        self._cache: dict[Principal, tuple[bytes, float]] = {}

    def token_for(self, principal: Principal) -> bytes:
        now = time.monotonic()
        hit = self._cache.get(principal)
        if hit is not None and hit[1] > now:
            return hit[0]
        token = sign_identity(principal, self.secret, self.ttl).encode()
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[principal] = (token, now + self.ttl / 2)
        return token
