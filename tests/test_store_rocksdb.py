"""The RocksDB backend against the shared store conformance suite, plus its own extras."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import rocksdb_layout as layout
from storage.base import MessageStore
from storage.errors import IncompatibleFormat
from storage.rocksdb_store import RocksDBStore
from storage.testing import StoreConformance


class TestRocksDBStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"

    def open_store(self) -> MessageStore:
        return RocksDBStore(str(self.data_dir))

    def reopen(self, store: MessageStore) -> MessageStore:
        store.close()
        return RocksDBStore(str(self.data_dir))

    def test_refuses_a_newer_format(self) -> None:
        store = RocksDBStore(str(self.data_dir))
        store._cf["meta"].put(layout.META_FORMAT, layout.u32(layout.FORMAT_VERSION + 1))
        store.close()
        with pytest.raises(IncompatibleFormat):
            RocksDBStore(str(self.data_dir))


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
