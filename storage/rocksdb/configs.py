"""Topic and group configs as the JSON kept in the ``meta`` column family."""

from __future__ import annotations

import json
from typing import Any

from storage.model import CustomizedBackoff, ExponentialBackoff, GroupConfig, RetryPolicy, TopicConfig, TopicType


def topic_to_json(topic: TopicConfig) -> bytes:
    return json.dumps({
        "name": topic.name, "id": topic.topic_id, "type": topic.type.value,
        "queues": topic.queues, "created_ms": topic.created_ms, "retention_ms": topic.retention_ms,
    }).encode()


def topic_from_json(raw: bytes) -> TopicConfig:
    data: dict[str, Any] = json.loads(raw)
    return TopicConfig(data["name"], data["id"], TopicType(data["type"]), data["queues"], data["created_ms"],
                       data.get("retention_ms"))


def policy_to_json(policy: RetryPolicy) -> dict[str, Any]:
    if isinstance(policy, CustomizedBackoff):
        return {"customized": list(policy.delays_ms)}
    return {"exponential": {"initial_ms": policy.initial_ms, "max_ms": policy.max_ms,
                            "multiplier": policy.multiplier}}


def policy_from_json(data: dict[str, Any]) -> RetryPolicy:
    if "exponential" in data:
        return ExponentialBackoff(**data["exponential"])
    return CustomizedBackoff(tuple(data["customized"]))


def group_to_json(group: GroupConfig) -> bytes:
    return json.dumps({
        "name": group.name, "id": group.group_id, "created_ms": group.created_ms,
        "from_beginning": group.from_beginning, "max_retries": group.max_retries,
        "retry_policy": policy_to_json(group.retry_policy), "consume_enabled": group.consume_enabled,
        "fifo": group.fifo,
    }).encode()


def group_from_json(raw: bytes) -> GroupConfig:
    data: dict[str, Any] = json.loads(raw)
    defaults = GroupConfig("", 0, 0)
    return GroupConfig(
        data["name"], data["id"], data["created_ms"], data["from_beginning"],
        max_retries=data.get("max_retries", defaults.max_retries),
        retry_policy=policy_from_json(data["retry_policy"]) if "retry_policy" in data else defaults.retry_policy,
        consume_enabled=data.get("consume_enabled", defaults.consume_enabled),
        fifo=data.get("fifo", defaults.fifo),
    )
