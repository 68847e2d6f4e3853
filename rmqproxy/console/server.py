"""The console's HTTP server: an aiohttp application on the server's own event loop.

Every request gets a session (server-side, rmqproxy/console/sessions.py). With authentication on,
every page but the sign-in page needs a signed-in user, and each page's admin calls carry that
user's signature, so the ACLs decide what the user may see and do (rmqproxy/console/calls.py).
Every POST must carry the session's CSRF token and, when the browser says where the request comes
from (Origin), come from the console itself; the cookie is SameSite=Strict besides.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from rmqproxy.auth.access import AccessControl
from rmqproxy.clock import Sleeper
from rmqproxy.console import pages_access, pages_groups, pages_messages, pages_overview, pages_topics
from rmqproxy.console.calls import CallFailed, Credentials
from rmqproxy.console.rates import RateHistory
from rmqproxy.console.sessions import COOKIE, Sessions
from rmqproxy.console.web import (
    CLOCK,
    EXTRA,
    SERVICES,
    SESSIONS,
    TEMPLATES,
    ConsoleServices,
    failure_page,
    form,
    redirect,
    render,
    session_of,
    set_session_cookie,
    templates,
)
from rmqproxy.context import RequestContext
from rmqproxy.errors import AccessDenied
from rmqproxy.listen import ports
from rmqproxy.metrics.recorder import MetricsRecorder

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
OPEN_PATHS = ("/signin", "/static/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def sessions_and_guards(request: web.Request, handler: Handler) -> web.StreamResponse:
    sessions = request.app[SESSIONS]
    session = sessions.get(request.cookies.get(COOKIE))
    fresh = session is None
    if session is None:
        session = sessions.new()
    request["session"] = session
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="cross-site request refused (Origin is not this console)")
        token = (await form(request)).get("csrf", "")
        if fresh or not session.csrf_ok(token):
            raise web.HTTPForbidden(text="cross-site request refused (missing or wrong CSRF token): reload the page")
    open_path = request.path.startswith(OPEN_PATHS)
    response: web.StreamResponse
    if request.app[SERVICES].auth and session.credentials is None and not open_path:
        response = redirect("/signin")
    else:
        try:
            response = await handler(request)
        except CallFailed as failed:
            response = failure_page(request, failed)
        except web.HTTPRedirection as moved:
            response = moved
    if fresh:
        set_session_cookie(response, session, request.secure)
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


async def signin_page(request: web.Request) -> web.StreamResponse:
    return render(request, "signin.html", error="")


async def signin(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    user, secret = values.get("access_key", ""), values.get("secret_key", "")
    access: AccessControl | None = request.app[SERVICES].access
    if access is None:
        raise redirect("/", "authentication is off: no sign-in needed")
    from rmqproxy.console.calls import call_context

    context = call_context(Credentials(user, secret), "ipv4:0.0.0.0:0", request.app[CLOCK])
    metadata = dict(context.invocation_metadata())
    try:
        access.authenticate(RequestContext("", "", "", "", "", None, metadata["authorization"],
                                           metadata["x-mq-date-time"]), required=True)
    except AccessDenied:
        return render(request, "signin.html", status=403, error="wrong access key or secret key, or user disabled")
    old = session_of(request)
    request.app[SESSIONS].drop(old.id)
    session = request.app[SESSIONS].new(Credentials(user, secret))  # a new id: no fixation
    response = redirect("/", f"signed in as {user}")
    set_session_cookie(response, session, request.secure)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].drop(session_of(request).id)
    response = redirect("/signin" if request.app[SERVICES].auth else "/")
    response.del_cookie(COOKIE, path="/")
    return response


class Console:
    """The console of one server process (built by rmqproxy/app.py when --console-port is set)."""

    def __init__(self, services: ConsoleServices, clock: Sleeper, recorder: MetricsRecorder) -> None:
        self.rates = RateHistory(recorder, clock)
        self._services = services
        app = web.Application(middlewares=[sessions_and_guards], client_max_size=8 * 1024 * 1024)
        app[SERVICES] = services
        app[SESSIONS] = Sessions(clock)
        app[TEMPLATES] = templates()
        app[CLOCK] = clock
        app[EXTRA] = {"rates": self.rates}
        app.router.add_get("/signin", signin_page)
        app.router.add_post("/signin", signin)
        app.router.add_post("/signout", signout)
        app.router.add_static("/static/", STATIC)
        for module in (pages_overview, pages_topics, pages_groups, pages_messages, pages_access):
            module.add_routes(app.router)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        if not self._services.auth and host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("the console listens on %s without --auth: anyone who reaches it can change topics, "
                        "groups and offsets", host)
        await self._runner.setup()
        for sock in ports.listen(host, port):
            site = web.SockSite(self._runner, sock)
            await site.start()
            self.port = int(sock.getsockname()[1])
        self.rates.start()

    async def close(self) -> None:
        await self.rates.stop()
        with contextlib.suppress(Exception):
            await self._runner.cleanup()
