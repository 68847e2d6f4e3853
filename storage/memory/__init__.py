"""In-memory store: the reference semantics of the contract, kept deliberately plain.

Nothing survives close(). Used by the conformance suite as the yardstick, by tests of the layers
above that want no disk, and by ``serve --store memory``. Its coroutines never suspend (it is a
synchronous backend, see storage/base.py). Speed is not a goal here: revive scans every in-flight
message.

The contract's areas live in modules of their own, mixins over the shared state
(:mod:`storage.memory.state`): catalog, messages (append, timers, half messages), consume,
progress, offsets (pull reads and explicit offsets).
"""

from __future__ import annotations

from storage.base import Capabilities, MessageStore
from storage.leases import LeaseMixin
from storage.memory.auth import MemoryAuth
from storage.memory.catalog import MemoryCatalog
from storage.memory.consume import MemoryConsume
from storage.memory.messages import MemoryMessages
from storage.memory.offsets import MemoryOffsets
from storage.memory.progress import MemoryProgress
from storage.memory.query import MemoryQuery


class MemoryStore(MemoryAuth, MemoryQuery, MemoryCatalog, MemoryMessages, MemoryConsume, MemoryOffsets, MemoryProgress,
                  LeaseMixin, MessageStore):
    capabilities = Capabilities(persistent=False)


__all__ = ["MemoryStore"]
