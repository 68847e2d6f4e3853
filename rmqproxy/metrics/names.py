"""Metric names, labels and buckets: Apache RocketMQ's (BrokerMetricsConstant, the views of its
BrokerMetricsManager and RemotingMetricsManager), so that its dashboards work unchanged; plus the
``rmqproxy_*`` metrics of this server."""

from __future__ import annotations

MESSAGES_IN = "rocketmq_messages_in"  # prometheus_client adds _total to counters
MESSAGES_OUT = "rocketmq_messages_out"
THROUGHPUT_IN = "rocketmq_throughput_in"
THROUGHPUT_OUT = "rocketmq_throughput_out"
MESSAGE_SIZE = "rocketmq_message_size"
CONSUMER_READY = "rocketmq_consumer_ready_messages"
CONSUMER_INFLIGHT = "rocketmq_consumer_inflight_messages"
CONSUMER_LAG = "rocketmq_consumer_lag_messages"
CONSUMER_LAG_LATENCY = "rocketmq_consumer_lag_latency"
CONSUMER_QUEUEING_LATENCY = "rocketmq_consumer_queueing_latency"
SEND_TO_DLQ = "rocketmq_send_to_dlq_messages"
COMMIT = "rocketmq_commit_messages"
ROLLBACK = "rocketmq_rollback_messages"
HALF_MESSAGES = "rocketmq_half_messages"
PRODUCER_CONNECTIONS = "rocketmq_producer_connections"
CONSUMER_CONNECTIONS = "rocketmq_consumer_connections"
TOPIC_NUMBER = "rocketmq_topic_number"
CONSUMER_GROUP_NUMBER = "rocketmq_consumer_group_number"
RPC_LATENCY = "rocketmq_rpc_latency"

STORE_APPEND_SECONDS = "rmqproxy_store_append_seconds"
LONG_POLLING_WAITERS = "rmqproxy_long_polling_waiters"
TIMERS_PENDING = "rmqproxy_timers_pending"
ACKS = "rmqproxy_acks"
SCRAPE_STORE_SECONDS = "rmqproxy_scrape_store_seconds"
CLIENT_PREFIX = "rmqproxy_client_"
"""Client metrics re-exported: rocketmq_send_cost_time -> rmqproxy_client_send_cost_time."""

MESSAGE_SIZE_BUCKETS = (1024.0, 4 * 1024.0, 512 * 1024.0, 1024 * 1024.0, 2 * 1024 * 1024.0, 4 * 1024 * 1024.0)
"""Bytes: 1 KB, 4 KB, 512 KB, 1 MB, 2 MB, 4 MB (the reference's view)."""
RPC_LATENCY_BUCKETS = (1.0, 3.0, 5.0, 7.0, 10.0, 100.0, 1000.0, 2000.0, 3000.0)
"""Milliseconds (the reference's RemotingMetricsManager view)."""
STORE_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

# Common labels of every rocketmq_* series (the reference sets them on its meter).
LABEL_CLUSTER = "cluster"
LABEL_NODE_TYPE = "node_type"
LABEL_NODE_ID = "node_id"
NODE_TYPE = "broker"

MESSAGE_TYPES = ("normal", "fifo", "delay", "transaction")
"""Values of the message_type label (the reference's TopicMessageType, lower case)."""

PROTOCOL_TYPE = "grpc_v2"


def is_system_topic(name: str) -> bool:
    """Dead-letter and retry topics (``%DLQ%``, ``%RETRY%``) and the reference's rmq_sys_ topics."""
    return name.startswith("%") or name.startswith("rmq_sys_")


def flag(value: bool) -> str:
    return "true" if value else "false"
