"""Plumbing every console page shares: the services it calls, templates, sessions, CSRF, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from rmqproxy.admin import AdminService
from rmqproxy.admin_messages import MessagesAdminService
from rmqproxy.auth.access import AccessControl
from rmqproxy.auth.service import AccessAdminService
from rmqproxy.broker.broker import Broker
from rmqproxy.clock import Sleeper
from rmqproxy.config import ServerConfig
from rmqproxy.console.calls import CallFailed, call_context, grpc_peer
from rmqproxy.console.sessions import COOKIE, Session, Sessions
from rmqproxy.service import MessagingService

PAGE_SIZE = 50


@dataclass(frozen=True)
class ConsoleServices:
    """The admin API's service objects (the same ones the gRPC server serves) and what the
    console reads directly: the broker's node health, and AccessControl to check a sign-in."""

    admin: AdminService
    messages: MessagesAdminService
    access_admin: AccessAdminService
    messaging: MessagingService
    broker: Broker
    access: AccessControl | None
    auth: bool
    config: ServerConfig
    started_ms: int


def templates() -> jinja2.Environment:
    # Autoescape everywhere: topic, group and user names, keys, tags and bodies are untrusted.
    env = jinja2.Environment(loader=jinja2.PackageLoader("rmqproxy.console", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["urlencode"] = urlencode
    return env


SERVICES = web.AppKey("services", ConsoleServices)
SESSIONS = web.AppKey("sessions", Sessions)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
CLOCK = web.AppKey("clock", Sleeper)
EXTRA = web.AppKey("extra", dict)


def services(request: web.Request) -> ConsoleServices:
    return request.app[SERVICES]


def session_of(request: web.Request) -> Session:
    session: Session = request["session"]
    return session


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    session = session_of(request)
    page = request.app[TEMPLATES].get_template(template).render(
        session=session, auth=services(request).auth, notice=request.query.get("notice", ""),
        path=request.path, **values)
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str, notice: str = "") -> web.HTTPSeeOther:
    if notice:
        location += ("&" if "?" in location else "?") + urlencode({"notice": notice})
    return web.HTTPSeeOther(location)


async def call(request: web.Request, method: Callable[[Any, Any], Awaitable[Any]], message: Any) -> Any:
    """One admin call as the signed-in user: through the pipeline, like a gRPC call."""
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    where = grpc_peer(str(peer[0]), int(peer[1])) if peer else "ipv4:0.0.0.0:0"
    context = call_context(session_of(request).credentials, where, request.app[CLOCK])
    return await method(message, context)


def failure_page(request: web.Request, failed: CallFailed) -> web.Response:
    status = {"NOT_FOUND": 404, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 403, "INVALID_ARGUMENT": 400,
              "ALREADY_EXISTS": 409, "FAILED_PRECONDITION": 409}.get(failed.code.name, 500)
    return render(request, "error.html", status=status, code=failed.code.name, message=failed.message)


async def form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def page_of(items: list[Any], request: web.Request, size: int = PAGE_SIZE) -> tuple[list[Any], int, int]:
    """The items of the page the query asks for, that page (from 1) and the number of pages."""
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    pages = max(1, -(-len(items) // size))
    page = min(page, pages)
    return items[(page - 1) * size: page * size], page, pages


def set_session_cookie(response: web.StreamResponse, session: Session, secure: bool) -> None:
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", path="/", secure=secure)
