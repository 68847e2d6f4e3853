import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoreTimeRange(_message.Message):
    __slots__ = ("since", "until")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryMessagesRequest(_message.Message):
    __slots__ = ("topic", "message_id", "key", "tag", "store_time", "retry_group", "limit", "lite_topic")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STORE_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRY_GROUP_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LITE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    message_id: str
    key: str
    tag: str
    store_time: StoreTimeRange
    retry_group: str
    limit: int
    lite_topic: str
    def __init__(self, topic: _Optional[str] = ..., message_id: _Optional[str] = ..., key: _Optional[str] = ..., tag: _Optional[str] = ..., store_time: _Optional[_Union[StoreTimeRange, _Mapping]] = ..., retry_group: _Optional[str] = ..., limit: _Optional[int] = ..., lite_topic: _Optional[str] = ...) -> None: ...

class MessageSummary(_message.Message):
    __slots__ = ("topic", "message_id", "tag", "keys", "queue_id", "offset", "store_time", "body_size", "message_group", "attempts", "lite_topic")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    STORE_TIME_FIELD_NUMBER: _ClassVar[int]
    BODY_SIZE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_GROUP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LITE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    message_id: str
    tag: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    queue_id: int
    offset: int
    store_time: _timestamp_pb2.Timestamp
    body_size: int
    message_group: str
    attempts: int
    lite_topic: str
    def __init__(self, topic: _Optional[str] = ..., message_id: _Optional[str] = ..., tag: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., queue_id: _Optional[int] = ..., offset: _Optional[int] = ..., store_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body_size: _Optional[int] = ..., message_group: _Optional[str] = ..., attempts: _Optional[int] = ..., lite_topic: _Optional[str] = ...) -> None: ...

class QueryMessagesResponse(_message.Message):
    __slots__ = ("messages", "limit")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MessageSummary]
    limit: int
    def __init__(self, messages: _Optional[_Iterable[_Union[MessageSummary, _Mapping]]] = ..., limit: _Optional[int] = ...) -> None: ...

class ShowMessageRequest(_message.Message):
    __slots__ = ("topic", "message_id", "lite_topic")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LITE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    message_id: str
    lite_topic: str
    def __init__(self, topic: _Optional[str] = ..., message_id: _Optional[str] = ..., lite_topic: _Optional[str] = ...) -> None: ...

class GroupState(_message.Message):
    __slots__ = ("group", "state", "attempts")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    group: str
    state: str
    attempts: int
    def __init__(self, group: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class DeadLetterOrigin(_message.Message):
    __slots__ = ("topic", "message_id", "attempts")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    message_id: str
    attempts: int
    def __init__(self, topic: _Optional[str] = ..., message_id: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class MessageDetail(_message.Message):
    __slots__ = ("summary", "properties", "system_properties", "body", "body_is_text", "body_crc32", "groups", "dead_letter")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SystemPropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_IS_TEXT_FIELD_NUMBER: _ClassVar[int]
    BODY_CRC32_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    summary: MessageSummary
    properties: _containers.ScalarMap[str, str]
    system_properties: _containers.ScalarMap[str, str]
    body: bytes
    body_is_text: bool
    body_crc32: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupState]
    dead_letter: DeadLetterOrigin
    def __init__(self, summary: _Optional[_Union[MessageSummary, _Mapping]] = ..., properties: _Optional[_Mapping[str, str]] = ..., system_properties: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ..., body_is_text: _Optional[bool] = ..., body_crc32: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupState, _Mapping]]] = ..., dead_letter: _Optional[_Union[DeadLetterOrigin, _Mapping]] = ...) -> None: ...

class ShowMessageResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MessageDetail]
    def __init__(self, messages: _Optional[_Iterable[_Union[MessageDetail, _Mapping]]] = ...) -> None: ...

class TraceRecord(_message.Message):
    __slots__ = ("kind", "time", "group", "client_id", "address", "attempt", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    time: _timestamp_pb2.Timestamp
    group: str
    client_id: str
    address: str
    attempt: int
    detail: str
    def __init__(self, kind: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group: _Optional[str] = ..., client_id: _Optional[str] = ..., address: _Optional[str] = ..., attempt: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class MessageTrace(_message.Message):
    __slots__ = ("summary", "records")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    summary: MessageSummary
    records: _containers.RepeatedCompositeFieldContainer[TraceRecord]
    def __init__(self, summary: _Optional[_Union[MessageSummary, _Mapping]] = ..., records: _Optional[_Iterable[_Union[TraceRecord, _Mapping]]] = ...) -> None: ...

class TraceMessageResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MessageTrace]
    def __init__(self, messages: _Optional[_Iterable[_Union[MessageTrace, _Mapping]]] = ...) -> None: ...
