"""How a lite topic (RIP-83) is named in the store: ``%LMQ%$<parent>$<lite topic>``, a one-queue
topic of its own (rmqproxy/broker/lite.py says why). Clients never see that name."""

from __future__ import annotations

import re

LMQ_PREFIX = "%LMQ%$"
LITE_NAME = re.compile(r"[A-Za-z0-9_%.:-]+")
LITE_NAME_RULE = "letters, digits, '_', '-', '.', ':' and '%'"


def lite_store_name(parent: str, lite: str) -> str:
    return f"{LMQ_PREFIX}{parent}${lite}"


def split_lite_store_name(name: str) -> tuple[str, str] | None:
    """(parent, lite topic) of a lite topic's store name; None for any other topic. Parent names
    never hold a '$' (rmqproxy/names.py), so the first one ends the parent."""
    if not name.startswith(LMQ_PREFIX):
        return None
    parent, _, lite = name[len(LMQ_PREFIX):].partition("$")
    return parent, lite


def shown_topic(store_name: str) -> str:
    """The topic a client is shown for a message stored in ``store_name``: a lite topic's parent."""
    parsed = split_lite_store_name(store_name)
    return store_name if parsed is None else parsed[0]
