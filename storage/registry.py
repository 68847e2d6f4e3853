"""Which store ``serve --store`` means: one registry from a store spec to the store the broker holds.

    rocksdb[:PATH]                     the embedded RocksDB store (default; PATH defaults to the data
                                       directory), in a process of its own or, with ``in_thread``,
                                       on a thread of the server
    memory                             the in-memory store, on a thread (nothing survives a restart)
    redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]
                                       Redis Cluster (storage/redis): any of its nodes; the store
                                       connects on its first call, so a cluster that does not answer
                                       fails the server's start with StoreOpenFailed. NAMESPACE (default
                                       ``rmq``) prefixes every key and channel, so that separate
                                       deployments can share one cluster

A backend joins by adding an entry to ``BACKENDS``: a function from the spec and the options to
an open :class:`~storage.base.MessageStore`. A synchronous backend comes wrapped in its worker (a
forwarding store); a networked one is returned as is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from storage.base import MessageStore
from storage.errors import StoreOpenFailed


@dataclass(frozen=True)
class StoreSpec:
    backend: str
    location: str | None = None
    """A path (rocksdb) or a list of addresses (redis); None: the backend's default."""

    def __str__(self) -> str:
        if self.backend == "redis":
            return f"redis://{self.location}"
        return self.backend if self.location is None else f"{self.backend}:{self.location}"


@dataclass(frozen=True)
class StoreOptions:
    data_dir: str
    """Where rocksdb keeps its data when the spec names no path."""
    in_thread: bool = False
    """Run a synchronous backend on a thread of this process instead of a process of its own."""
    redis_wait_replicas: int = 0
    """Redis: a send is acknowledged once this many replicas have it (WAIT)."""
    redis_retries: int = 10
    """Redis: how often a call is retried while the cluster fails over before it fails."""


def parse_store(text: str) -> StoreSpec:
    """A store spec from its text; ValueError saying what is accepted."""
    text = text.strip()
    if "://" in text:
        scheme, _, location = text.partition("://")
        backend, location_or_none = scheme.lower(), location or None
    else:
        name, sep, path = text.partition(":")
        backend, location_or_none = name.lower(), (path if sep else None)
        if sep and not path:
            raise ValueError(f"store {text!r} names no path after the colon")
    if backend not in BACKENDS:
        raise ValueError(f"unknown store {text!r}: use rocksdb[:PATH], memory or redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]")
    if backend == "memory" and location_or_none is not None:
        raise ValueError("the memory store takes no location")
    if backend == "redis" and not location_or_none:
        raise ValueError("a redis store needs its addresses: redis://HOST:PORT[,HOST:PORT...][/NAMESPACE]")
    if backend == "redis":
        from storage.redis import parse_location

        parse_location(location_or_none or "")  # ValueError now, not when the store opens
    return StoreSpec(backend, location_or_none)


def describe(spec: StoreSpec, options: StoreOptions) -> str:
    """Where the data is, for the server's log."""
    if spec.backend == "rocksdb":
        return f"data in {spec.location or options.data_dir}"
    if spec.backend == "memory":
        return "in memory"
    return str(spec)


def open_store(spec: StoreSpec, options: StoreOptions) -> MessageStore:
    """The open store for ``spec``. StoreOpenFailed (or another StoreError) if it cannot be opened."""
    return BACKENDS[spec.backend](spec, options)


def _rocksdb(spec: StoreSpec, options: StoreOptions) -> MessageStore:
    from storage.executor import ThreadExecutor
    from storage.process_executor import ProcessExecutor
    from storage.rocksdb import RocksDBStore

    path = spec.location or options.data_dir
    if options.in_thread:
        return ThreadExecutor(RocksDBStore(path))
    return ProcessExecutor(functools.partial(RocksDBStore, path))


def _memory(spec: StoreSpec, options: StoreOptions) -> MessageStore:
    from storage.executor import ThreadExecutor
    from storage.memory import MemoryStore

    return ThreadExecutor(MemoryStore())


def _redis(spec: StoreSpec, options: StoreOptions) -> MessageStore:
    from storage.redis import RedisStore, parse_location
    from storage.redis.client import ClusterConnection

    try:
        addresses, namespace = parse_location(spec.location or "")
    except ValueError as exc:
        raise StoreOpenFailed(str(spec), str(exc)) from None
    return RedisStore(ClusterConnection(addresses, retries=options.redis_retries,
                                        wait_replicas=options.redis_wait_replicas), namespace)


BACKENDS: dict[str, Callable[[StoreSpec, StoreOptions], MessageStore]] = {
    "rocksdb": _rocksdb,
    "memory": _memory,
    "redis": _redis,
}
