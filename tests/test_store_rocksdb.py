"""The RocksDB backend against the shared store conformance suite, plus its own extras."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rocksdict

from storage.base import MessageStore
from storage.errors import IncompatibleFormat
from storage.model import AppendBatch, TopicType
from storage.rocksdb import RocksDBStore
from storage.rocksdb import layout as layout
from storage.testing import T0, StoreConformance, msg


class TestRocksDBStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"

    async def open_store(self) -> MessageStore:
        return RocksDBStore(str(self.data_dir))

    async def reopen(self, store: MessageStore) -> MessageStore:
        await store.close()
        return RocksDBStore(str(self.data_dir))

    async def test_refuses_a_newer_format(self) -> None:
        store = RocksDBStore(str(self.data_dir))
        store._cf["meta"].put(layout.META_FORMAT, layout.u32(layout.FORMAT_VERSION + 1))
        await store.close()
        with pytest.raises(IncompatibleFormat):
            RocksDBStore(str(self.data_dir))

    async def test_durable_appends_are_synced_and_others_are_not(self) -> None:
        store = RocksDBStore(str(self.data_dir))
        writes = _RecordWrites(store._db)
        store._db = writes  # type: ignore[assignment]
        try:
            await store.create_topic("t", TopicType.NORMAL, 1, T0)
            writes.synced.clear()
            await store.append([AppendBatch("t", 0, [msg(1)])], T0, durable=True)
            await store.append([AppendBatch("t", 0, [msg(2)])], T0, durable=False)
            assert writes.synced == [True, False]
        finally:
            await store.close()

    async def test_generations_past_32_bits(self) -> None:
        """The generation counter is 64-bit and jumps ahead by a block at every open: receipts
        keep working past 2^32 (see also tests/test_receipt.py for their encoding)."""
        store = RocksDBStore(str(self.data_dir))
        store._cf["meta"].put(layout.META_SEQ_GENERATION, layout.u64(2**32 - 2))
        store = await self.reopen(store)
        try:
            await store.create_topic("t", TopicType.NORMAL, 1, T0)
            await store.create_group("g", T0 - 1)
            await self.fill(store, "t", 0, range(4))
            popped = await store.pop("g", "t", [0], 4, 30_000, T0)
            generations = [p.receipt.generation for p in popped]
            assert generations == list(range(2**32 - 2, 2**32 + 2))
            for p in popped:
                await store.ack("g", "t", p.receipt, T0 + 1)
        finally:
            await store.close()


class _RecordWrites:
    """Stands in for the database: records whether each write asked for a sync."""

    def __init__(self, db: rocksdict.Rdict) -> None:
        self._db = db
        self.synced: list[bool] = []

    def write(self, batch: rocksdict.WriteBatch, options: rocksdict.WriteOptions) -> None:
        self.synced.append(bool(options.sync))
        self._db.write(batch, options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_entry_codec_round_trip() -> None:
    for tag, group, props in [(None, None, {}), ("", "", {"": ""}), ("TagA", "g-1", {"k": "v" * 70000, "é": "ü"})]:
        raw = layout.encode_entry(123, tag, group, props)
        assert layout.decode_entry(raw) == (123, tag, group, props)
        assert layout.entry_store_ms(raw) == 123


def test_message_codec_round_trip() -> None:
    raw = layout.encode_message(99, "ID-1", b"\x00payload")
    assert layout.decode_message(raw) == (99, "ID-1", b"\x00payload", None)
    raw = layout.encode_message(99, "ID-1", b"\x00payload", ("orders", "ID-0", 17))
    assert layout.decode_message(raw) == (99, "ID-1", b"\x00payload", ("orders", "ID-0", 17))
    assert layout.message_id_of(raw) == "ID-1"


def test_keys_sort_numerically() -> None:
    keys = [layout.tqo(1, 0, n) for n in (0, 1, 255, 256, 2**40)]
    assert keys == sorted(keys)
    assert layout.invis(5, 9, 9, 9, 9) < layout.invis(6, 0, 0, 0, 0)
    assert layout.next_prefix(b"\x00\x01\xff") == b"\x00\x02"


class _CountingReads(RocksDBStore):
    """The real store, counting the keys its range scans read."""

    keys_read = 0

    def _scan(self, cf: str, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for item in super()._scan(cf, start, end):
            self.keys_read += 1
            yield item


async def test_a_gauges_read_costs_the_same_whatever_the_backlog(tmp_path: Path) -> None:
    """What a metrics scrape reads does not grow with the backlog: the same keys are read with 10
    and with 5,010 messages waiting (in-flight and retry records are read; the backlog is not)."""
    store = _CountingReads(str(tmp_path / "data"))
    await store.create_topic("t", TopicType.NORMAL, 2, T0)
    await store.create_group("g", T0 - 1)
    await store.append([AppendBatch("t", q, [msg(i) for i in range(5)]) for q in (0, 1)], T0)
    await store.pop("g", "t", [0, 1], 3, 30_000, T0)
    await store.gauges()  # the first read fills the store's caches of queue ends
    before = store.keys_read
    small = await store.gauges()
    small_reads = store.keys_read - before
    for start in range(0, 5000, 1000):
        await store.append([AppendBatch("t", 1, [msg(i) for i in range(start, start + 1000)])], T0 + 1)
    before = store.keys_read
    large = await store.gauges()
    assert store.keys_read - before == small_reads
    assert (small.consumers[0].backlog, large.consumers[0].backlog) == (7, 5007)
    await store.close()
