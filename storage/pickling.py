"""How the store's value types pickle: as (class, field values).

Values cross to and from the store process in bulk (:mod:`storage.forwarding`), so the few
microseconds the dataclass default costs per instance add up.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping


def pickle_by_fields(cls: type) -> None:
    """Pickle instances as (class, field values): values cross to and from the store process in
    bulk, and the dataclass default (a state dict built with ``fields()`` per instance, restored
    one ``setattr`` at a time) costs several times more."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    get = operator.attrgetter(*names)

    def reduce_one(self: object) -> tuple[object, ...]:
        return (cls, (get(self),))

    def reduce_many(self: object) -> tuple[object, ...]:
        return (cls, get(self))

    cls.__reduce__ = reduce_one if len(names) == 1 else reduce_many  # type: ignore[assignment,method-assign]


def pickle_dataclasses_by_fields(namespace: Mapping[str, object], module: str) -> None:
    """:func:`pickle_by_fields` for every dataclass defined in ``module``, whose globals are ``namespace``."""
    for value in list(namespace.values()):
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module:
            pickle_by_fields(value)
