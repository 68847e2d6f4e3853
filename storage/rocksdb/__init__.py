"""The default backend: an embedded RocksDB (through ``rocksdict``) in raw mode.

See :mod:`storage.rocksdb.layout` for the key layout. Each public method builds one WriteBatch
(:class:`storage.rocksdb.write.Write`), so a crash keeps all of a state change or none of it.
Durable appends are written with ``sync=True`` (fsync of the write-ahead log); everything else is
written without sync: it still survives a crash of the process (the log is handed to the OS on
every write) and the next synced write flushes it to disk as well.

A synchronous backend (see storage/base.py): its coroutines never suspend, and it is driven by
one worker at a time (storage/executor.py), which is what makes its read-modify-write steps safe
without locks. rocksdict holds the GIL for the whole of a write, fsync included, so the server
runs it in a process of its own.

The contract's areas are mixins over :class:`storage.rocksdb.core.RocksDBCore`: catalog,
messages (append, timers, half messages), pop, consume (ack, invisibility, revive, dead
letters), progress.
"""

from __future__ import annotations

from storage.base import Capabilities, MessageStore
from storage.leases import LeaseMixin
from storage.rocksdb.auth import RocksDBAuth
from storage.rocksdb.catalog import RocksDBCatalog
from storage.rocksdb.consume import RocksDBConsume
from storage.rocksdb.messages import RocksDBMessages
from storage.rocksdb.offsets import RocksDBOffsets
from storage.rocksdb.pop import RocksDBPop
from storage.rocksdb.progress import RocksDBProgress
from storage.rocksdb.query import RocksDBQuery


class RocksDBStore(RocksDBAuth, RocksDBQuery, RocksDBCatalog, RocksDBMessages, RocksDBPop, RocksDBConsume,
                   RocksDBOffsets, RocksDBProgress, LeaseMixin, MessageStore):
    capabilities = Capabilities(persistent=True)


__all__ = ["RocksDBStore"]
