"""The pluggable message store: the contract (base), its values (model), its errors, and backends."""

from storage.base import Capabilities, EntryFilter, MessageStore
from storage.model import (
    AppendBatch,
    GroupConfig,
    GroupQueueProgress,
    NewMessage,
    Popped,
    QueueEntry,
    QueueOffsets,
    Receipt,
    Revived,
    ReviveResult,
    StoredMessage,
    TopicConfig,
    TopicType,
)

__all__ = [
    "AppendBatch",
    "Capabilities",
    "EntryFilter",
    "GroupConfig",
    "GroupQueueProgress",
    "MessageStore",
    "NewMessage",
    "Popped",
    "QueueEntry",
    "QueueOffsets",
    "Receipt",
    "ReviveResult",
    "Revived",
    "StoredMessage",
    "TopicConfig",
    "TopicType",
]
