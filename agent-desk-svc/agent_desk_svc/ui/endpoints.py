"""The UI's pages, and signing in and out. Pages are shells rendered with what this service already knows (who is
signed in, their state and open call, the dashboard figures); their scripts then work through the public API at
the gateway, which authenticates the `cc_session` cookie and checks `X-CSRF-Token` on every change.

The gateway does not check CSRF on UI paths (they are public there), so the sign-in and sign-out forms carry
the double-submit token themselves and are checked here."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents import repository as agents_repository
from agent_desk_svc.agents import service as agents_service
from agent_desk_svc.agents.models import Agent
from agent_desk_svc.calls import repository as calls_repository
from agent_desk_svc.dashboard.service import dashboard
from agent_desk_svc.ui import presenters
from agent_desk_svc.ui.session import (CSRF_COOKIE, CSRF_FIELD, csrf_matches, end_session, is_https, new_csrf_token,
                                       set_csrf, set_session, signed_in_staff, usable_csrf_cookie)
from services.app import DbSession, service_router
from services.auth import Principal
from services.errors import DomainError, Unauthorized
from services.logging import get_logger
from services.timeutil import to_london

log = get_logger(__name__)

UI_DIR = Path(__file__).parent
STATIC_DIR = UI_DIR / "static"
MANAGERS = agents_service.MANAGERS
_FORM_LIMIT = 8 * 1024  # a sign-in form is tiny; anything bigger is not one of ours

# Pages may only load what this service serves: no CDN, no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                "base-uri 'none'; object-src 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = service_router(tags=["ui"], include_in_schema=False)
# What a page adds to the shared context, given who is signed in.
PageContext = Callable[[Principal, Agent], Awaitable[dict[str, Any]]]
templates = Jinja2Templates(directory=str(UI_DIR / "templates"))


@cache
def _fingerprint(path: str) -> str:
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    """A static file's URL with its content hash, so a browser never runs yesterday's script with today's page."""
    return f"/static/{path}?v={_fingerprint(path)}"


templates.env.globals.update(static_url=static_url, state_labels=presenters.STATE_LABELS)
templates.env.filters.update(duration=presenters.duration, nhs=presenters.spaced_nhs_number)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


# ---------------------------------------------------------------------------------------------- helpers

def _render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _to_sign_in() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def home_for(role: str) -> str:
    return "/supervisor" if role in MANAGERS else "/"


def _csrf_for_page(request: Request) -> tuple[str, bool]:
    """The token a page's forms carry: the browser's current one, or a new one (True: set the cookie)."""
    current = usable_csrf_cookie(request.cookies.get(CSRF_COOKIE))
    return (current, False) if current else (new_csrf_token(), True)


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, first value per field. Not multipart: our forms never upload files."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20)
    return {name: values[0] for name, values in fields.items()}


async def _staff_page(request: Request, session: AsyncSession, template: str, build: PageContext | None = None,
                      *, managers_only: bool = False) -> Response:
    """A page for signed-in staff (managers only, if so marked): otherwise to the sign-in page, or a 403 page."""
    principal = signed_in_staff(request)
    if principal is None:
        return _to_sign_in()
    agent = await agents_repository.get(session, principal.subject)
    if agent is None or not agent.active:  # the token outlived the account
        response = _to_sign_in()
        end_session(response, secure=is_https(request))
        return response
    csrf, new_cookie = _csrf_for_page(request)
    context = {"principal": principal, "agent": agent, "is_manager": principal.role in MANAGERS, "csrf": csrf}
    if managers_only and principal.role not in MANAGERS:
        response = _render(request, "error.html", context | {
            "page": "error", "title": "Supervisors only",
            "message": "This page is for supervisors. Your desk is on the Desk page."}, status_code=403)
    else:
        page = template.removesuffix(".html")
        response = _render(request, template, context | {"page": page} | (await build(principal, agent) if build else {}))
    if new_cookie:
        set_csrf(response, csrf, secure=is_https(request))
    return response


def _agent_json(agent: Agent) -> dict[str, Any]:
    return {"username": agent.username, "display_name": agent.display_name, "role": agent.role,
            "state": agent.state, "state_since": to_london(agent.state_since).isoformat()}


# ---------------------------------------------------------------------------------------------- signing in and out

def _login_page(request: Request, *, error: str | None = None, username: str = "",
                status_code: int = 200) -> HTMLResponse:
    # A fresh token for every form shown after a failure; otherwise reuse the browser's (several open tabs).
    csrf, new_cookie = _csrf_for_page(request) if error is None else (new_csrf_token(), True)
    response = _render(request, "login.html", {"page": "login", "csrf": csrf, "error": error, "username": username,
                                               "expired": request.query_params.get("expired") == "1"},
                       status_code=status_code)
    if new_cookie:
        set_csrf(response, csrf, secure=is_https(request))
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    principal = signed_in_staff(request)
    if principal is not None:
        return RedirectResponse(home_for(principal.role), status_code=303)
    return _login_page(request)


@router.post("/login")
async def sign_in(request: Request) -> Response:
    form = await _read_form(request)
    username = form.get("username", "")[:64]
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD)):
        log.info("ui.sign_in_csrf_refused")
        return _login_page(request, error="This sign-in form had expired. Please sign in again.", username=username,
                           status_code=403)
    settings = request.app.state.settings
    try:
        issued = await agents_service.sign_in(request.app.state.db, request.app.state.passwords, settings,
                                              username, form.get("password", "")[:1024])
    except Unauthorized:
        return _login_page(request, error="The username or password is wrong, or the account is disabled.",
                           username=username, status_code=401)
    except agents_service.SignInLocked:
        return _login_page(request, error="Too many failed sign-ins for this username. Wait a few minutes and "
                                          "try again, or ask a supervisor.", username=username, status_code=429)
    secure = is_https(request)
    response = RedirectResponse(home_for(issued.role), status_code=303)
    response.headers.update(SECURITY_HEADERS)
    set_session(response, issued.access_token, max_age=issued.expires_in, secure=secure)
    # A new token once signed in: one planted before sign-in (say by a sibling subdomain) is worthless after.
    set_csrf(response, new_csrf_token(), secure=secure)
    return response


@router.post("/logout")
async def sign_out(request: Request, session: DbSession) -> Response:
    form = await _read_form(request)
    submitted = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token")
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), submitted):
        return _render(request, "error.html", {"page": "error", "title": "Sign-out refused",
                                               "message": "That sign-out request did not come from this site. "
                                                          "Use the Sign out button."}, status_code=403)
    principal = signed_in_staff(request)
    if principal is not None:
        try:  # off the dashboard's "available" count; an open call keeps its state until it is wrapped up
            await agents_service.change_state(session, principal, principal.subject, "offline")
        except DomainError:
            pass
    response = _to_sign_in()
    end_session(response, secure=is_https(request))
    return response


# ---------------------------------------------------------------------------------------------- pages

@router.get("/")
async def desk_page(request: Request, session: DbSession) -> Response:
    async def build(principal: Principal, agent: Agent) -> dict[str, Any]:
        call = await calls_repository.open_call_for(session, principal.subject)
        open_call = None if call is None else {"id": call.id, "started_at": to_london(call.started_at).isoformat(),
                                               "nhs_number": call.nhs_number, "practice": call.ods_code}
        return {"data": {"agent": _agent_json(agent), "open_call": open_call,
                         "dispositions": presenters.dispositions(),
                         "red_flag_dispositions": list(presenters.RED_FLAG_DISPOSITIONS),
                         "states": presenters.agent_states()}}

    return await _staff_page(request, session, "desk.html", build)


@router.get("/callbacks")
async def callbacks_page(request: Request, session: DbSession) -> Response:
    async def build(principal: Principal, agent: Agent) -> dict[str, Any]:
        return {"data": {"me": principal.subject, "sources": presenters.CALLBACK_SOURCE_LABELS}}

    return await _staff_page(request, session, "callbacks.html", build)


@router.get("/supervisor")
async def dashboard_page(request: Request, session: DbSession) -> Response:
    async def build(principal: Principal, agent: Agent) -> dict[str, Any]:
        figures = (await dashboard(session)).model_dump(mode="json")
        return {"figures": figures, "data": {"figures": figures, "states": presenters.agent_states()}}

    return await _staff_page(request, session, "dashboard.html", build, managers_only=True)


@router.get("/supervisor/agents")
async def agents_page(request: Request, session: DbSession) -> Response:
    async def build(principal: Principal, agent: Agent) -> dict[str, Any]:
        return {"data": {"me": principal.subject, "my_role": principal.role, "states": presenters.agent_states()}}

    return await _staff_page(request, session, "agents.html", build, managers_only=True)
