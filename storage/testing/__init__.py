"""The conformance suite every store backend must pass: the store contract (storage/base.py) as
one class of tests.

A backend's test module subclasses :class:`StoreConformance` and implements two hooks:
``open_store()`` (a fresh, empty store) and, for persistent backends, ``reopen(store)`` (close it
and open the same data again). Time is explicit: every test passes ``now_ms`` values, so nothing
here reads the wall clock or sleeps. Filters passed to stores pickle, so the suite also runs
against a store in another process.

The cases are grouped by area of the contract, one module each: catalog, append, consume,
redelivery (invisibility, revive, dead letters), suspend (a change of invisibility that is no
attempt), progress, fifo, held (timers and half messages), offsets (pull reads and explicit
offsets), persistence, concurrency (several consumers at once), leases, gauges (what metrics read),
auth (users and ACL entries) and query (message indexes and consume states).
"""

from __future__ import annotations

from storage.testing.append import AppendCases
from storage.testing.auth import AuthCases
from storage.testing.catalog import CatalogCases
from storage.testing.concurrency import ConcurrencyCases
from storage.testing.consume import ConsumeCases
from storage.testing.fifo import FifoCases
from storage.testing.gauges import GaugeCases
from storage.testing.held import HeldCases
from storage.testing.leases import LeaseCases
from storage.testing.offsets import OffsetCases
from storage.testing.persistence import PersistenceCases
from storage.testing.progress import ProgressCases
from storage.testing.query import QueryCases
from storage.testing.redelivery import RedeliveryCases
from storage.testing.support import INVISIBLE, T0, Cases, EntryIs, TagIs, msg, numbers, offsets
from storage.testing.suspend import SuspendCases


class StoreConformance(CatalogCases, AppendCases, ConsumeCases, RedeliveryCases, ProgressCases, FifoCases,
                       HeldCases, PersistenceCases, ConcurrencyCases, LeaseCases, GaugeCases, AuthCases,
                       OffsetCases, SuspendCases, QueryCases):
    """Every case of the contract; a backend's test class subclasses this."""


__all__ = ["INVISIBLE", "T0", "Cases", "EntryIs", "StoreConformance", "TagIs", "msg", "numbers", "offsets"]
