"""The overview: message rates in and out and the busiest topics and groups over the last hour,
and the node's health."""

from __future__ import annotations

from aiohttp import web

from rmqproxy.console.calls import CallFailed
from rmqproxy.console.charts import bars, line_chart
from rmqproxy.console.rates import WINDOW_MS, RateHistory
from rmqproxy.console.web import CLOCK, EXTRA, call, render, services
from rmqproxy.durations import format_duration


async def overview(request: web.Request) -> web.StreamResponse:
    found = services(request)
    rates: RateHistory = request.app[EXTRA]["rates"]
    now = request.app[CLOCK].now_ms()
    rates_in, rates_out = rates.series()
    # Names of topics and groups are shown only to a user who may list them (List on the cluster,
    # as ListTopics needs): the rest see the node's rates and health.
    try:
        await call(request, lambda _, context: found.admin.topic_configs(context), None)
        may_list = True
    except CallFailed as failed:
        if not failed.denied:
            raise
        may_list = False
    topics, groups = rates.busiest() if may_list else ([], [])
    config = found.config
    health = [
        ("status", "serving"),
        ("uptime", format_duration(max(now - found.started_ms, 0) // 1000 * 1000 or 1000)),
        ("worker", f"{config.worker_index} of {config.workers}" if config.worker_index else "single process"),
        ("store", config.store),
        *([("topics", str(len(found.broker.list_topics()))),
           ("consumer groups", str(len(found.broker.list_groups()))),
           ("clients online", str(len(found.broker.clients.all())))] if may_list else []),
        ("authentication", "on" if config.auth else "off"),
        ("message trace", "on" if config.trace else "off"),
    ]
    return render(request, "overview.html", health=health,
                  chart=line_chart({"in": rates_in, "out": rates_out}, WINDOW_MS, now),
                  last_in=rates_in[-1][1] if rates_in else 0.0, last_out=rates_out[-1][1] if rates_out else 0.0,
                  topics=bars(topics), groups=bars(groups), may_list=may_list)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", overview)
