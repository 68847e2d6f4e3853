"""Errors a message store raises.

The tree, so callers can catch at the level they care about::

    StoreError
    ├── NotFound
    │   ├── TopicNotFound
    │   ├── GroupNotFound
    │   └── QueueNotFound
    ├── AlreadyExists
    │   ├── TopicExists
    │   └── GroupExists
    ├── InvalidReceipt          stale, superseded, expired or unknown receipt
    ├── TimerNotFound           a scheduled message already delivered, recalled, or unknown
    ├── TransactionNotFound     a half message already committed, rolled back, or unknown
    ├── StoreClosed
    │   └── StoreUnavailable    the store's worker is gone (stopped, or its process died)
    ├── DiskFull                the store's disk has no room for a write (reads still work)
    ├── StoreOpenFailed         the data directory cannot be opened (locked, unreadable)
    └── IncompatibleFormat      on-disk format version this code cannot read

The store knows nothing of gRPC: the front end maps these to protocol codes in one place
(rmqproxy/errors.py).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by a store backend."""

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt without calling __init__ (whose arguments differ from ``args``), so an error
        # crosses from the store process to the server intact, attributes and all.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[StoreError], args: tuple[object, ...], state: dict[str, object]) -> StoreError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class NotFound(StoreError):
    pass


class TopicNotFound(NotFound):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic


class GroupNotFound(NotFound):
    def __init__(self, group: str) -> None:
        super().__init__(f"consumer group {group!r} does not exist")
        self.group = group


class QueueNotFound(NotFound):
    def __init__(self, topic: str, queue_id: int) -> None:
        super().__init__(f"topic {topic!r} has no queue {queue_id}")
        self.topic = topic
        self.queue_id = queue_id


class AlreadyExists(StoreError):
    pass


class TopicExists(AlreadyExists):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} already exists")
        self.topic = topic


class GroupExists(AlreadyExists):
    def __init__(self, group: str) -> None:
        super().__init__(f"consumer group {group!r} already exists")
        self.group = group


class InvalidReceipt(StoreError):
    """The receipt does not name a message currently in flight for this group with this generation.

    ``reason`` is one of ``unknown`` (nothing in flight at that position: acked, dead-lettered or
    never delivered), ``superseded`` (a later receive or ChangeInvisibleDuration replaced it) or
    ``expired`` (its invisible duration ran out).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"receipt handle is {reason}" + (f": {detail}" if detail else ""))
        self.reason = reason


class TimerNotFound(StoreError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class TransactionNotFound(StoreError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class DiskFull(StoreError):
    """A write found no room on the store's disk. Nothing of it was stored; reads keep working and
    writes resume by themselves once space is freed."""

    def __init__(self, path: str, free_bytes: int) -> None:
        super().__init__(f"the store's disk is full ({free_bytes // 1024} KiB free at {path}): "
                         "writes are refused until space is freed")
        self.path = path
        self.free_bytes = free_bytes


class StoreClosed(StoreError):
    def __init__(self, detail: str = "the store is closed") -> None:
        super().__init__(detail)


class StoreUnavailable(StoreClosed):
    """The store's worker is gone (stopped, or its process died): nothing can be stored."""


class StoreOpenFailed(StoreError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot open the store at {path}: {reason}")
        self.path = path


class IncompatibleFormat(StoreError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(f"data directory has format version {found}; this build reads version {supported}")
        self.found = found
        self.supported = supported
