"""Consumer groups: the list with backlog, one group's consumers and settings, pause and resume,
resetting an offset (after a confirmation page saying what will happen), and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from rmqproxy.console.calls import CallFailed
from rmqproxy.console.pages_topics import progress_row, when
from rmqproxy.console.web import call, form, page_of, redirect, render, services
from rmqproxy.durations import format_duration
from rmqproxy.names import dlq_topic
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2 as mapi

GROUP_PAGE = 25
"""Groups per page: each row is one DescribeGroup (the backlog is counted per group)."""


def policy_text(policy: api.RetryPolicy) -> str:
    if policy.WhichOneof("policy") == "exponential":
        exp = policy.exponential
        return (f"exponential: {exp.initial.ToMilliseconds() / 1000:g}s doubling by {exp.multiplier:g}, "
                f"at most {exp.max.ToMilliseconds() / 1000:g}s")
    delays = [d.ToMilliseconds() / 1000 for d in policy.customized.delays]
    return "customized: " + (", ".join(f"{d:g}s" for d in delays) if delays else "RocketMQ's default levels")


def group_row(group: api.Group, topics: list[api.TopicProgress]) -> dict[str, Any]:
    return {"name": group.name, "max_retries": group.max_retries, "policy": policy_text(group.retry_policy),
            "paused": not group.consume_enabled, "fifo": group.fifo, "from_beginning": group.from_beginning,
            "created": when(group.created),
            "ready": sum(t.ready for t in topics), "inflight": sum(t.inflight for t in topics),
            "retrying": sum(t.retrying for t in topics), "dead_lettered": sum(t.dead_lettered for t in topics),
            "oldest_ready": oldest(topics, "oldest_ready_age"),
            "oldest_inflight": oldest(topics, "oldest_inflight_age")}


def oldest(topics: list[api.TopicProgress], field: str) -> str:
    ages = [getattr(t, field).ToMilliseconds() for t in topics if t.HasField(field)]
    return format_duration(max(ages)) if ages else "-"


async def groups(request: web.Request) -> web.StreamResponse:
    admin = services(request).admin
    listed = await call(request, admin.ListGroups, api.ListGroupsRequest())
    search = request.query.get("q", "").strip()
    found = sorted((g for g in listed.groups if search.lower() in g.name.lower()), key=lambda g: g.name)
    shown, page, pages = page_of(found, request, GROUP_PAGE)
    rows = []
    for group in shown:
        described = await call(request, admin.DescribeGroup, api.DescribeGroupRequest(name=group.name))
        rows.append(group_row(described.group, list(described.topics)))
    return render(request, "groups.html", groups=rows, q=search, page=page, pages=pages, total=len(found))


async def group(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    found = await call(request, services(request).admin.DescribeGroup, api.DescribeGroupRequest(name=name))
    consumers = [{"client_id": c.client_id, "address": c.address, "language": c.language,
                  "version": c.client_version, "type": c.client_type, "last_heartbeat": when(c.last_heartbeat),
                  "subscriptions": sorted(c.subscriptions.items()), "inconsistent": c.inconsistent_subscription}
                 for c in found.consumers]
    policy = found.group.retry_policy
    return render(request, "group.html", group=group_row(found.group, list(found.topics)),
                  topics=[progress_row(t) for t in found.topics], consumers=consumers,
                  exponential=policy.WhichOneof("policy") == "exponential",
                  delays=" ".join(f"{d.ToMilliseconds() / 1000:g}s" for d in policy.customized.delays),
                  initial=policy.exponential.initial.ToMilliseconds() / 1000 or 1,
                  maximum=policy.exponential.max.ToMilliseconds() / 1000 or 7200,
                  multiplier=policy.exponential.multiplier or 2)


async def create_group(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    message = api.CreateGroupRequest(name=values.get("name", "").strip(),
                                     from_beginning=values.get("from_beginning") == "on")
    created = await call(request, services(request).admin.CreateGroup, message)
    raise redirect(f"/groups/{created.name}", f"group {created.name} created")


def _seconds(text: str) -> float:
    return float(text.strip().removesuffix("s") or "0")


async def update_group(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    values = await form(request)
    settings = api.GroupSettings()
    try:
        if values.get("max_retries", "").strip():
            settings.max_retries = int(values["max_retries"])
        if values.get("policy") == "exponential":
            exp = settings.retry_policy.exponential
            exp.initial.FromMilliseconds(int(_seconds(values.get("initial", "1")) * 1000))
            exp.max.FromMilliseconds(int(_seconds(values.get("max", "7200")) * 1000))
            exp.multiplier = float(values.get("multiplier", "2") or 2)
        elif values.get("policy") == "customized":
            custom = settings.retry_policy.customized
            custom.SetInParent()
            for delay in values.get("delays", "").replace(",", " ").split():
                custom.delays.add().FromMilliseconds(int(_seconds(delay) * 1000))
    except ValueError:
        raise redirect(f"/groups/{name}", "retries, delays and the multiplier must be numbers") from None
    await call(request, services(request).admin.UpdateGroup, api.UpdateGroupRequest(name=name, settings=settings))
    raise redirect(f"/groups/{name}", "settings saved")


async def pause_or_resume(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    enable = request.match_info["action"] == "resume"
    settings = api.GroupSettings(consume_enabled=enable)
    await call(request, services(request).admin.UpdateGroup, api.UpdateGroupRequest(name=name, settings=settings))
    raise redirect(f"/groups/{name}", f"group {name} {'resumed' if enable else 'paused'}")


def _reset_target(values: Any) -> tuple[api.ResetOffsetRequest, str]:
    """The request a reset form asks for and, in words, where it moves the group."""
    message = api.ResetOffsetRequest(group=values.get("group", ""), topic=values.get("topic", "").strip(),
                                     lite_topic=values.get("lite", "").strip())
    to = values.get("to", "latest")
    if to == "earliest":
        message.earliest = True
        return message, "the oldest stored message: every message still stored is delivered again"
    if to == "time":
        text = values.get("time", "").strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise redirect(f"/groups/{message.group}", f"not a time: {text[:40]} (use 2026-01-31T12:00:00Z)") \
                from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        message.timestamp.FromDatetime(moment)
        return message, (f"the first message stored at or after {when(message.timestamp)}: later ones are delivered "
                         "(again), earlier ones skipped")
    message.latest = True
    return message, "the end of each queue: every message not yet consumed is skipped (the backlog is cleared)"


async def reset_confirm(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    values = {**request.query, "group": name}
    message, effect = _reset_target(values)
    found = await call(request, services(request).admin.DescribeGroup, api.DescribeGroupRequest(name=name))
    current = next((progress_row(t) for t in found.topics if t.topic == message.topic), None)
    if message.lite_topic:
        current = None  # the row above is the parent's sum over lite topics, not this lite topic's queue
    return render(request, "reset.html", group=name, topic=message.topic, effect=effect, current=current,
                  to=values.get("to", "latest"), time=values.get("time", ""), lite=message.lite_topic)


async def reset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    message, _ = _reset_target({**await form(request), "group": name})
    moved = await call(request, services(request).admin.ResetOffset, message)
    raise redirect(f"/groups/{name}", f"offset of {name} on {moved.topic} reset: {moved.ready} ready now")


async def dead_letters(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    await call(request, services(request).admin.DescribeGroup, api.DescribeGroupRequest(name=name))
    query = mapi.QueryMessagesRequest(topic=dlq_topic(name), store_time=mapi.StoreTimeRange())
    try:
        found = list((await call(request, services(request).messages.QueryMessages, query)).messages)
    except CallFailed as failed:
        if failed.code.name != "NOT_FOUND":
            raise
        found = []  # no dead-letter topic yet: nothing was ever dead-lettered
    rows = [{"message_id": m.message_id, "tag": m.tag, "key_list": list(m.keys), "stored": when(m.store_time),
             "size": m.body_size} for m in found]
    return render(request, "dlq.html", group=name, topic=dlq_topic(name), messages=rows)


async def resend(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    data = await request.post()
    ids = [v for k, v in data.items() if k == "message_id" and isinstance(v, str)]
    if not ids:
        raise redirect(f"/groups/{name}/dlq", "select at least one message")
    answer = await call(request, services(request).admin.ResendDeadLetters,
                        api.ResendDeadLettersRequest(group=name, message_ids=ids))
    sent = sum(1 for m in answer.messages if m.found)
    raise redirect(f"/groups/{name}/dlq", f"resent {sent} of {len(ids)} message(s) to their topic")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/groups", groups)
    router.add_post("/groups", create_group)
    router.add_get("/groups/{name}", group)
    router.add_post("/groups/{name}/settings", update_group)
    router.add_post("/groups/{name}/{action:pause|resume}", pause_or_resume)
    router.add_get("/groups/{name}/reset", reset_confirm)
    router.add_post("/groups/{name}/reset", reset)
    router.add_get("/groups/{name}/dlq", dead_letters)
    router.add_post("/groups/{name}/dlq/resend", resend)
