"""Messages: query by id, key, tag or store time; one message's properties, escaped body preview,
per-group state and trace timeline; exporting a body; sending a test message."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from rmqproxy.console.calls import CONSOLE_CLIENT_ID
from rmqproxy.console.pages_topics import when
from rmqproxy.console.web import call, form, redirect, render, services
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2 as api

PREVIEW_BYTES = 4096
KINDS = ("key", "message_id", "tag", "time")


def _moment(text: str) -> datetime | None:
    if not text.strip():
        return None
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def messages(request: web.Request) -> web.StreamResponse:
    topic = request.query.get("topic", "").strip()
    by = request.query.get("by", "key")
    value = request.query.get("value", "").strip()
    lite = request.query.get("lite", "").strip()  # a lite topic parent: only this lite topic
    rows: list[dict[str, Any]] | None = None
    if topic:
        query = api.QueryMessagesRequest(topic=topic, lite_topic=lite)
        if by == "time":
            try:
                since, until = _moment(request.query.get("since", "")), _moment(request.query.get("until", ""))
            except ValueError:
                raise redirect("/messages", "times look like 2026-01-31T12:00:00Z") from None
            query.store_time.SetInParent()
            if since is not None:
                query.store_time.since.FromDatetime(since)
            if until is not None:
                query.store_time.until.FromDatetime(until)
        elif by in KINDS:
            setattr(query, by, value)
        found = await call(request, services(request).messages.QueryMessages, query)
        rows = [{"message_id": m.message_id, "topic": m.topic, "tag": m.tag, "key_list": list(m.keys),
                 "queue_id": m.queue_id, "offset": m.offset, "stored": when(m.store_time), "size": m.body_size,
                 "lite_topic": m.lite_topic} for m in found.messages]
    return render(request, "messages.html", rows=rows, topic=topic, by=by, value=value, kinds=KINDS, lite=lite,
                  any_lite=any(r["lite_topic"] for r in rows or ()),
                  since=request.query.get("since", ""), until=request.query.get("until", ""))


def _detail(detail: api.MessageDetail) -> dict[str, Any]:
    body = bytes(detail.body)
    preview = body[:PREVIEW_BYTES]
    if detail.body_is_text:  # control characters shown as a dot, like a hex viewer's text column
        text = "".join(c if c.isprintable() or c in "\n\t" else "·" for c in preview.decode("utf-8", "replace"))
    else:
        text = preview.hex(" ")
    return {"summary": detail.summary, "stored": when(detail.summary.store_time),
            "properties": sorted(detail.properties.items()),
            "system_properties": sorted(detail.system_properties.items()),
            "preview": text, "is_text": detail.body_is_text, "truncated": len(body) > PREVIEW_BYTES,
            "size": len(body), "crc32": detail.body_crc32,
            "groups": [{"group": g.group, "state": g.state, "attempts": g.attempts} for g in detail.groups],
            "dead_letter": detail.dead_letter if detail.HasField("dead_letter") else None}


async def message(request: web.Request) -> web.StreamResponse:
    topic, message_id = request.match_info["topic"], request.match_info["id"]
    asked = api.ShowMessageRequest(topic=topic, message_id=message_id, lite_topic=request.query.get("lite", ""))
    shown = await call(request, services(request).messages.ShowMessage, asked)
    traced = await call(request, services(request).messages.TraceMessage, asked)
    traces = [[{"kind": r.kind, "time": r.time.ToDatetime().strftime("%H:%M:%S.%f")[:-3], "group": r.group,
                "client_id": r.client_id, "address": r.address, "attempt": r.attempt, "detail": r.detail}
               for r in t.records] for t in traced.messages]
    return render(request, "message.html", topic=topic, message_id=message_id, lite=asked.lite_topic,
                  copies=[_detail(d) for d in shown.messages], traces=traces, trace_on=services(request).config.trace)


async def export_body(request: web.Request) -> web.StreamResponse:
    topic, message_id = request.match_info["topic"], request.match_info["id"]
    shown = await call(request, services(request).messages.ShowMessage,
                       api.ShowMessageRequest(topic=topic, message_id=message_id,
                                              lite_topic=request.query.get("lite", "")))
    body = bytes(shown.messages[0].body)
    # An attachment of an opaque type: the browser saves it and never renders it.
    return web.Response(body=body, content_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{message_id}.bin"'})


async def send_page(request: web.Request) -> web.StreamResponse:
    return render(request, "send.html", topic=request.query.get("topic", ""), sent=None, error="")


async def send(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    topic = values.get("topic", "").strip()
    sp = pb.SystemProperties(message_id="01" + secrets.token_hex(16).upper(), message_type=pb.NORMAL,
                             body_encoding=pb.IDENTITY, born_host="console")
    if values.get("tag", "").strip():
        sp.tag = values["tag"].strip()
    sp.keys.extend(k for k in values.get("keys", "").split() if k)
    wire = pb.Message(topic=pb.Resource(name=topic), system_properties=sp, body=values.get("body", "").encode())
    answer = await call(request, services(request).messaging.SendMessage, rpc.SendMessageRequest(messages=[wire]))
    status = answer.status if not answer.entries else answer.entries[0].status
    if status.code != pb.Code.OK:
        return render(request, "send.html", status=400, topic=topic, sent=None,
                      error=f"{pb.Code.Name(status.code)}: {status.message}")
    return render(request, "send.html", topic=topic, error="",
                  sent={"message_id": sp.message_id, "producer": CONSOLE_CLIENT_ID})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/messages", messages)
    router.add_get("/messages/{topic}/{id}", message)
    router.add_get("/messages/{topic}/{id}/body", export_body)
    router.add_get("/send", send_page)
    router.add_post("/send", send)
