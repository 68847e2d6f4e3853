"""The ``rmqproxy`` admin commands' output: responses as tables and sentences, or as JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from rmqproxy.durations import format_duration

_INT64_TYPES = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64})


def _numbers(data: Any, descriptor: Any) -> Any:
    """Protobuf's JSON mapping writes 64-bit integers as strings; people and scripts want numbers."""
    if isinstance(data, list):
        return [_numbers(item, descriptor) for item in data]
    if not isinstance(data, dict) or descriptor is None:
        return data
    for field in descriptor.fields:
        if field.name not in data:
            continue
        if field.type in _INT64_TYPES:
            value = data[field.name]
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            data[field.name] = _numbers(data[field.name], field.message_type)
    return data


def to_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = _numbers(
        MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        message.DESCRIPTOR)
    return result


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _dur(text: str | None) -> str:
    """A JSON duration ("1.500s") in the CLI's spelling."""
    return "-" if not text else format_duration(round(float(text.rstrip("s")) * 1000))


def _age(text: str | None) -> str:
    """An age, rounded to what a person cares about (whole seconds past a second)."""
    if not text:
        return "-"
    ms = round(float(text.rstrip("s")) * 1000)
    return format_duration(ms if ms < 1000 else round(ms / 1000) * 1000)


def _policy(policy: dict[str, Any]) -> str:
    if "exponential" in policy:
        exp = policy["exponential"]
        return f"exponential {_dur(exp['initial'])} x{exp['multiplier']:g} max {_dur(exp['max'])}"
    delays = policy.get("customized", {}).get("delays", [])
    return "customized " + " ".join(_dur(d) for d in delays) if delays else "customized (default levels)"


def _print_progress(items: list[dict[str, Any]], key: str) -> None:
    for item in items:
        print(f"\n{key} {item[key]}: ready {item['ready']}, in flight {item['inflight']}, retrying "
              f"{item['retrying']}, dead-lettered {item['dead_lettered']}, oldest ready "
              f"{_age(item.get('oldest_ready_age'))}, oldest in flight {_age(item.get('oldest_inflight_age'))}")
        rows = [(q["queue_id"], q["min_offset"], q["max_offset"], q["committed_offset"], q["ready"], q["inflight"],
                 q["retrying"], q["waiting"], q["dead_lettered"]) for q in item["queues"]]
        print(table(rows, ("QUEUE", "MIN", "MAX", "COMMITTED", "READY", "INFLIGHT", "RETRYING", "WAITING", "DLQ")))


def show(kind: str, action: str, response: Any) -> None:
    data = to_dict(response)
    if kind == "topic" and action in ("create", "list", "update"):
        topics = data.get("topics", [data])
        print(table([(t["name"], t["type"].lower(), t["queues"],
                       _dur(t["effective_retention"]) + ("" if t.get("retention") else " (default)"), t["created"])
                      for t in topics], ("NAME", "TYPE", "QUEUES", "RETENTION", "CREATED")))
    elif kind == "group" and action in ("create", "list", "update"):
        groups = data.get("groups", [data])
        print(table([(g["name"], "fifo" if g["fifo"] else "normal", "beginning" if g["from_beginning"] else "end",
                       g["max_retries"], _policy(g["retry_policy"]), "yes" if g["consume_enabled"] else "PAUSED",
                       g["created"]) for g in groups],
                     ("NAME", "KIND", "STARTS AT", "RETRIES", "RETRY POLICY", "CONSUMING", "CREATED")))
    elif kind == "topic" and action == "describe":
        topic = data["topic"]
        print(f"topic {topic['name']}: {topic['type'].lower()}, {topic['queues']} queues, retention "
              f"{_dur(topic['effective_retention'])}, created {topic['created']}")
        if data["pending_timers"] or topic["type"] == "DELAY":
            print(f"scheduled messages pending: {data['pending_timers']}, next due "
                  f"{data.get('next_timer_due') or '-'}")
        if data["pending_transactions"] or topic["type"] == "TRANSACTION":
            print(f"half messages waiting for their producer: {data['pending_transactions']}, next check "
                  f"{data.get('next_transaction_check') or '-'}")
        if topic["type"] == "LITE":
            names = data.get("lite_topic_names", [])
            print(f"lite topics: {data.get('lite_topics', 0)}" + (f" ({', '.join(names)}"
                  + (", ..." if len(names) < int(data.get("lite_topics", 0)) else "") + ")" if names else ""))
        print(table([(q["queue_id"], q["min_offset"], q["max_offset"]) for q in data["queues"]],
                     ("QUEUE", "MIN OFFSET", "MAX OFFSET")))
        _print_progress(data["groups"], "group")
    elif kind == "group" and action == "describe":
        group = data["group"]
        starts = "beginning" if group["from_beginning"] else "end"
        print(f"group {group['name']}: {'FIFO, ' if group['fifo'] else ''}"
              f"{'consuming' if group['consume_enabled'] else 'PAUSED'}, max retries "
              f"{group['max_retries']}, {_policy(group['retry_policy'])}, starts at the {starts} of new queues, "
              f"created {group['created']}")
        _print_progress(data["topics"], "topic")
        consumers = data["consumers"]
        print(f"\n{len(consumers)} consumer(s) online")
        if consumers:
            rows = [(c["client_id"], c["client_type"], c["address"], f"{c['language']} {c['client_version']}",
                     c["last_heartbeat"], ", ".join(f"{t}={e}" for t, e in sorted(c["subscriptions"].items())),
                     "DIFFERS" if c["inconsistent_subscription"] else "")
                    for c in consumers]
            print(table(rows, ("CLIENT ID", "TYPE", "ADDRESS", "CLIENT", "LAST HEARD", "SUBSCRIPTIONS", "")))
            if any(c["inconsistent_subscription"] for c in consumers):
                print("warning: consumers of this group subscribe differently; RocketMQ expects them to agree")
            for c in consumers:
                if c["client_properties"]:
                    shown = ", ".join(f"{k}={v}" for k, v in sorted(c["client_properties"].items()))
                    print(f"client properties of {c['client_id']}: {shown}")
    elif kind == "group" and action == "reset-offset":
        _print_progress([data], "topic")
    elif kind == "dlq":
        print(table([(m["message_id"], f"{m['topic']} queue {m['queue_id']} offset {m['offset']}" if m["found"]
                       else "NOT FOUND") for m in data["messages"]], ("MESSAGE ID", "RESENT TO")))
    else:
        print("ok")
