"""rmqproxy.admin.v1.Messages: message query and detail, for ``rmqproxy message ...`` and grpcurl.

Each call goes through the call pipeline (rmqproxy/pipeline.py) and needs Get on the topic when
auth is on. The work is the broker's (rmqproxy/broker/query.py); here requests are checked and
stored messages (their payload is the wire message) are turned into summaries and details.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy.admin_convert import group_filters
from rmqproxy.auth import rights
from rmqproxy.auth.rights import Need
from rmqproxy.broker.broker import Broker
from rmqproxy.broker.trace import TraceRecord
from rmqproxy.context import ServicerContext
from rmqproxy.convert import millis
from rmqproxy.errors import InvalidArgument
from rmqproxy.lite_names import shown_topic, split_lite_store_name
from rmqproxy.names import NAME_RULE, is_valid_resource_name
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Message
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2_grpc as api_grpc
from rmqproxy.pipeline import Pipeline
from storage.auth_model import Action
from storage.base import EntryFilter
from storage.errors import NotFound
from storage.model import QueueEntry, StoredMessage
from storage.query_contract import MAX_RETRY_VIEW, MessageQuery, QueryBy, limit_of, properties_with_keys

_GET = (Action.GET,)
MAX_VALUE = 1024
"""Longest id, key or tag a query accepts (longer ones cannot be stored either)."""


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def decode(stored: StoredMessage) -> Message:
    message = Message()
    message.ParseFromString(stored.payload)
    return message


def summary(stored: StoredMessage, message: Message) -> api.MessageSummary:
    """A lite topic's message shows its parent as topic, and the lite topic apart."""
    sp = message.system_properties
    lite = split_lite_store_name(stored.topic)
    return api.MessageSummary(
        topic=shown_topic(stored.topic), message_id=stored.message_id, tag=sp.tag, keys=list(sp.keys),
        queue_id=stored.queue_id, offset=stored.offset, store_time=_timestamp(stored.store_ms),
        body_size=len(message.body), message_group=sp.message_group, lite_topic=lite[1] if lite else "")


def queue_entry(stored: StoredMessage, message: Message) -> QueueEntry:
    """The entry a group's filter judged this message by."""
    sp = message.system_properties
    return QueueEntry(stored.offset, stored.store_ms, sp.tag if sp.HasField("tag") else None,
                      sp.message_group if sp.HasField("message_group") else None,
                      properties_with_keys(message.user_properties, sp.keys))


def system_properties(message: Message, stored: StoredMessage) -> dict[str, str]:
    """The system properties as text (json_format's names), with what the server knows of the copy."""
    raw = json_format.MessageToDict(message.system_properties, preserving_proto_field_name=True)
    text = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in raw.items()}
    text["store_timestamp"] = _timestamp(stored.store_ms).ToJsonString()
    text["queue_id"] = str(stored.queue_id)
    text["queue_offset"] = str(stored.offset)
    return text


def check_topic(name: str) -> None:
    if not is_valid_resource_name(name):
        raise InvalidArgument(f"invalid topic name {name[:80]!r}: use {NAME_RULE} (or %DLQ%<group>)")


def parse_query(request: api.QueryMessagesRequest) -> tuple[MessageQuery, int]:
    check_topic(request.topic)
    kind = request.WhichOneof("by")
    if kind is None:
        raise InvalidArgument("give a message id, a key, a tag or a store-time range")
    if kind == "store_time":
        window = request.store_time
        since = millis(window.since) if window.HasField("since") else None
        until = millis(window.until) if window.HasField("until") else None
        if since is not None and until is not None and until <= since:
            raise InvalidArgument("the store-time range ends before it begins")
        query = MessageQuery(QueryBy.STORE_TIME, "", since, until)
    else:
        value = getattr(request, kind)
        if not value or len(value) > MAX_VALUE:
            raise InvalidArgument(f"the {kind.replace('_', ' ')} must have 1 to {MAX_VALUE} characters")
        by = {"message_id": QueryBy.MESSAGE_ID, "key": QueryBy.KEY, "tag": QueryBy.TAG}[kind]
        query = MessageQuery(by, value)
    most = limit_of(query)
    if request.limit > most:
        raise InvalidArgument(f"a query by {query.by.name.lower().replace('_', ' ')} returns at most {most} "
                              "messages")
    return query, request.limit or most


class MessagesAdminService(api_grpc.MessagesServicer):
    def __init__(self, broker: Broker, pipeline: Pipeline | None = None) -> None:
        self._broker = broker
        self._pipeline = pipeline if pipeline is not None else Pipeline()

    async def _call(self, name: str, context: ServicerContext, work: Callable[[], Awaitable[Any]],
                    needs: Callable[[], Sequence[Need]]) -> Any:
        return await self._pipeline.grpc_unary(name, context, lambda _: work(), needs)

    async def _query(self, request: api.QueryMessagesRequest) -> api.QueryMessagesResponse:
        if request.WhichOneof("by") == "retry_group":
            return await self._retry_view(request)
        query, limit = parse_query(request)
        found = await self._broker.query_messages(request.topic, query, limit, request.lite_topic or None)
        return api.QueryMessagesResponse(messages=[summary(m, decode(m)) for m in found], limit=limit)

    async def _retry_view(self, request: api.QueryMessagesRequest) -> api.QueryMessagesResponse:
        check_topic(request.topic)
        if not is_valid_resource_name(request.retry_group):
            raise InvalidArgument(f"invalid group name {request.retry_group[:80]!r}: use {NAME_RULE}")
        if request.limit > MAX_RETRY_VIEW:
            raise InvalidArgument(f"a retry view returns at most {MAX_RETRY_VIEW} messages")
        limit = request.limit or MAX_RETRY_VIEW
        found = await self._broker.retry_messages(request.retry_group, request.topic, limit,
                                                  request.lite_topic or None)
        summaries = []
        for waiting in found:
            item = summary(waiting.message, decode(waiting.message))
            item.attempts = waiting.attempts
            summaries.append(item)
        return api.QueryMessagesResponse(messages=summaries, limit=limit)

    def _filters(self, topic: str) -> dict[str, EntryFilter | None]:
        """Per group, the filter its online consumers declared for the topic."""
        groups = {s.group for s in self._broker.clients.all() if s.group and topic in s.subscriptions}
        return {g: group_filters(self._broker.clients.consumers(g)).get(topic) for g in groups}

    async def _copies(self, request: api.ShowMessageRequest) -> list[StoredMessage]:
        """Every stored copy of the message, newest first; NotFound if none."""
        check_topic(request.topic)
        if not request.message_id or len(request.message_id) > MAX_VALUE:
            raise InvalidArgument(f"the message id must have 1 to {MAX_VALUE} characters")
        copies = await self._broker.query_messages(request.topic, MessageQuery(QueryBy.MESSAGE_ID, request.message_id),
                                                   limit_of(MessageQuery(QueryBy.KEY)), request.lite_topic or None)
        if not copies:
            raise NotFound(f"no message {request.message_id!r} stored in topic {request.topic!r}")
        return copies

    async def _show(self, request: api.ShowMessageRequest) -> api.ShowMessageResponse:
        copies = await self._copies(request)
        filters = self._filters(request.topic)
        details = []
        for stored in copies:
            message = decode(stored)
            states = await self._broker.message_states(stored, queue_entry(stored, message), filters)
            body = message.body
            try:
                body.decode("utf-8")
                is_text = True
            except UnicodeDecodeError:
                is_text = False
            detail = api.MessageDetail(
                summary=summary(stored, message), properties=dict(message.user_properties),
                system_properties=system_properties(message, stored), body=body, body_is_text=is_text,
                body_crc32=zlib.crc32(body),
                groups=[api.GroupState(group=s.group, state=s.state, attempts=s.attempts) for s in states])
            if stored.dead_letter is not None:
                origin = stored.dead_letter
                detail.dead_letter.CopyFrom(api.DeadLetterOrigin(topic=shown_topic(origin.topic),
                                                                 message_id=origin.message_id,
                                                                 attempts=origin.attempts))
            details.append(detail)
        return api.ShowMessageResponse(messages=details)

    async def _trace(self, request: api.ShowMessageRequest) -> api.TraceMessageResponse:
        copies = await self._copies(request)
        traces = []
        for stored in copies:
            records = [TraceRecord.decode(raw) for raw in await self._broker.message_trace(stored)]
            traces.append(api.MessageTrace(summary=summary(stored, decode(stored)), records=[
                api.TraceRecord(kind=r.kind, time=_timestamp(r.at_ms), group=r.group, client_id=r.client_id,
                                address=r.address, attempt=r.attempt, detail=r.detail) for r in records]))
        return api.TraceMessageResponse(messages=traces)

    async def TraceMessage(self, request: api.ShowMessageRequest, context: ServicerContext) -> Any:
        return await self._call("TraceMessage", context, lambda: self._trace(request),
                                lambda: [rights.topic(request.topic, _GET)])

    async def QueryMessages(self, request: api.QueryMessagesRequest, context: ServicerContext) -> Any:
        def needs() -> list[Need]:
            found = [rights.topic(request.topic, _GET)]
            if request.WhichOneof("by") == "retry_group":
                found.append(rights.group(request.retry_group, _GET))
            return found

        return await self._call("QueryMessages", context, lambda: self._query(request), needs)

    async def ShowMessage(self, request: api.ShowMessageRequest, context: ServicerContext) -> Any:
        return await self._call("ShowMessage", context, lambda: self._show(request),
                                lambda: [rights.topic(request.topic, _GET)])
