"""Topics: the searchable list, one topic's queues and groups, and creating a topic."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy.console.web import call, form, page_of, redirect, render, services
from rmqproxy.durations import format_duration
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from storage.model import TopicConfig

TYPES = {"NORMAL": api.NORMAL, "FIFO": api.FIFO, "DELAY": api.DELAY, "TRANSACTION": api.TRANSACTION,
         "PRIORITY": api.PRIORITY, "LITE": api.LITE}


def when(stamp: Timestamp) -> str:
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")


def age(value: Duration, present: bool) -> str:
    return format_duration(value.ToMilliseconds()) if present else "-"


def topic_row(topic: api.Topic) -> dict[str, Any]:
    return {"name": topic.name, "type": api.TopicType.Name(topic.type), "queues": topic.queues,
            "created": when(topic.created),
            "retention": format_duration(topic.effective_retention.ToMilliseconds())
            + ("" if topic.HasField("retention") else " (server default)")}


def progress_row(progress: api.TopicProgress) -> dict[str, Any]:
    return {"topic": progress.topic, "group": progress.group, "ready": progress.ready,
            "inflight": progress.inflight, "retrying": progress.retrying, "dead_lettered": progress.dead_lettered,
            "oldest_ready": age(progress.oldest_ready_age, progress.HasField("oldest_ready_age")),
            "oldest_inflight": age(progress.oldest_inflight_age, progress.HasField("oldest_inflight_age")),
            "queues": [{"queue_id": q.queue_id, "min": q.min_offset, "max": q.max_offset,
                        "committed": q.committed_offset, "next": q.next_offset, "ready": q.ready,
                        "inflight": q.inflight, "retrying": q.retrying, "waiting": q.waiting}
                       for q in progress.queues],
            "lite_topics": progress.lite_topics}


def config_row(topic: TopicConfig, default_retention_ms: int) -> dict[str, Any]:
    created = Timestamp()
    created.FromMilliseconds(topic.created_ms)
    retention = topic.retention_ms or default_retention_ms
    return {"name": topic.name, "type": topic.type.name, "queues": topic.queues, "created": when(created),
            "retention": format_duration(retention) + ("" if topic.retention_ms else " (server default)")}


async def topics(request: web.Request) -> web.StreamResponse:
    # The plain configs (ListTopics' rights, no response built): only the page shown is formatted,
    # so 10,000 topics cost a filter and a sort (docs/console.md has the figures).
    found = services(request)
    configs = await call(request, lambda _, context: found.admin.topic_configs(context), None)
    search = request.query.get("q", "").strip().lower()
    matching = sorted((t for t in configs if search in t.name.lower()), key=lambda t: t.name)
    shown, page, pages = page_of(matching, request)
    default = found.broker.settings.retention_ms
    return render(request, "topics.html", topics=[config_row(t, default) for t in shown],
                  q=request.query.get("q", "").strip(), page=page, pages=pages, total=len(matching), types=list(TYPES))


async def topic(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    found = await call(request, services(request).admin.DescribeTopic, api.DescribeTopicRequest(name=name))
    return render(request, "topic.html", topic=topic_row(found.topic),
                  queues=[{"queue_id": q.queue_id, "min": q.min_offset, "max": q.max_offset} for q in found.queues],
                  groups=[progress_row(g) for g in found.groups], pending_timers=found.pending_timers,
                  next_timer=when(found.next_timer_due) if found.HasField("next_timer_due") else "-",
                  pending_transactions=found.pending_transactions, lite_topics=found.lite_topics,
                  lite_names=list(found.lite_topic_names),
                  next_check=when(found.next_transaction_check) if found.HasField("next_transaction_check") else "-")


async def create_topic(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    message = api.CreateTopicRequest(name=values.get("name", "").strip(),
                                     type=TYPES.get(values.get("type", "NORMAL"), api.NORMAL))
    queues = values.get("queues", "").strip()
    if queues:
        if not queues.isdigit():
            raise redirect("/topics", "queues must be a number")
        message.queues = int(queues)
    hours = values.get("retention_hours", "").strip()
    if hours:
        try:
            message.retention.FromMilliseconds(int(float(hours) * 3600_000))
        except ValueError:
            raise redirect("/topics", "retention must be a number of hours") from None
    created = await call(request, services(request).admin.CreateTopic, message)
    raise redirect(f"/topics/{created.name}", f"topic {created.name} created")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/topics", topics)
    router.add_post("/topics", create_topic)
    router.add_get("/topics/{name}", topic)
