"""The in-memory backend against the shared store conformance suite."""

from __future__ import annotations

from storage.base import MessageStore
from storage.memory import MemoryStore
from storage.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    async def open_store(self) -> MessageStore:
        return MemoryStore()
