"""The Settings a server answers a client's Telemetry settings with.

Each client reads a different subset (see docs/protocol-notes.md): the Python client only
understands a customized consumer backoff, the Node.js client only an exponential one, and both
need max_body_size and long_polling_timeout set or they misbehave. So the answer is the client's
own settings with the server's values merged in, shaped for the client's language.
"""

from __future__ import annotations

from collections.abc import Mapping

from rmqproxy.broker.retry import (
    PRODUCER_BACKOFF,
    PRODUCER_MAX_ATTEMPTS,
    as_customized,
    as_exponential,
    in_whole_seconds,
)
from rmqproxy.config import ServerConfig
from rmqproxy.convert import duration
from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from storage.model import CustomizedBackoff, ExponentialBackoff, RetryPolicy

CONSUMER_TYPES = frozenset({pb.ClientType.PUSH_CONSUMER, pb.ClientType.SIMPLE_CONSUMER,
                            pb.ClientType.PULL_CONSUMER, pb.ClientType.LITE_PUSH_CONSUMER,
                            pb.ClientType.LITE_SIMPLE_CONSUMER})

LITE_CONSUMER_TYPES = frozenset({pb.ClientType.LITE_PUSH_CONSUMER, pb.ClientType.LITE_SIMPLE_CONSUMER})

_HEADER_LANGUAGES = {"JAVA": pb.Language.JAVA, "PYTHON": pb.Language.PYTHON, "HTTP": pb.Language.NODE_JS,
                     "NODE_JS": pb.Language.NODE_JS, "NODEJS": pb.Language.NODE_JS, "GOLANG": pb.Language.GOLANG,
                     "CPP": pb.Language.CPP, "DOTNET": pb.Language.DOT_NET, "RUST": pb.Language.RUST}


def client_language(settings: pb.Settings, header_language: str) -> int:
    """The client's language: from its user agent, else from the x-mq-language header."""
    if settings.user_agent.language != pb.Language.LANGUAGE_UNSPECIFIED:
        return settings.user_agent.language
    return _HEADER_LANGUAGES.get(header_language.upper(), pb.Language.LANGUAGE_UNSPECIFIED)


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in text.split("-")[0].split("."))
    except ValueError:
        return None


def exponential_in_milliseconds(settings: pb.Settings, language: int) -> bool:
    """Whether the client is a rocketmq-client-nodejs up to 1.0.8, which reads only the whole
    seconds of an exponential backoff, computes the delay in seconds, then uses that number as
    milliseconds (for a nack's invisible duration, and for FIFO redelivery timers). For it the
    server writes each duration's millisecond count into the ``seconds`` field: the client's
    arithmetic then yields the intended delay, sub-second ones included."""
    version = _version(settings.user_agent.version)
    return language == pb.Language.NODE_JS and version is not None and version <= (1, 0, 8)


def _retry_policy(policy: RetryPolicy, max_attempts: int, language: int, in_ms: bool) -> pb.RetryPolicy:
    if language == pb.Language.PYTHON:
        policy = in_whole_seconds(as_customized(policy, max_attempts))
    elif language == pb.Language.NODE_JS:
        policy = as_exponential(policy)
    result = pb.RetryPolicy(max_attempts=max_attempts)
    if isinstance(policy, CustomizedBackoff):
        result.customized_backoff.next.extend(duration(ms) for ms in policy.delays_ms)
    else:
        _exponential(result.exponential_backoff, policy, in_ms)
    return result


def _exponential(target: pb.ExponentialBackoff, policy: ExponentialBackoff, in_ms: bool) -> None:
    if in_ms:
        target.initial.seconds = policy.initial_ms
        target.max.seconds = policy.max_ms
    else:
        target.initial.CopyFrom(duration(policy.initial_ms))
        target.max.CopyFrom(duration(policy.max_ms))
    target.multiplier = policy.multiplier


def server_settings(client: pb.Settings, *, language: int, config: ServerConfig,
                    consumer_policy: RetryPolicy, max_attempts: int, fifo: bool) -> pb.Settings:
    answer = pb.Settings()
    answer.CopyFrom(client)
    in_ms = exponential_in_milliseconds(client, language)
    if client.client_type == pb.ClientType.PRODUCER:
        answer.backoff_policy.CopyFrom(pb.RetryPolicy(max_attempts=PRODUCER_MAX_ATTEMPTS))
        _exponential(answer.backoff_policy.exponential_backoff, PRODUCER_BACKOFF, in_ms)
        answer.publishing.max_body_size = config.max_body_bytes
        answer.publishing.validate_message_type = True
    elif client.client_type in CONSUMER_TYPES:
        answer.backoff_policy.CopyFrom(_retry_policy(consumer_policy, max_attempts, language, in_ms))
        answer.subscription.fifo = fifo
        answer.subscription.receive_batch_size = config.receive_batch_max
        answer.subscription.long_polling_timeout.CopyFrom(duration(config.long_polling_ms))
        if client.client_type in LITE_CONSUMER_TYPES:
            answer.subscription.lite_subscription_quota = config.lite_subscription_quota
            answer.subscription.max_lite_topic_size = config.max_lite_topic_size
    # Clients export their metrics (OTLP) to the address they already use; see client_metrics.py.
    answer.metric.Clear()
    # The Go client always dials TLS for its metrics, whatever its own TLS setting: on a plaintext-only
    # port it would fail every export, so it is told to keep its metrics to itself.
    go_without_tls = language == pb.Language.GOLANG and config.tls_mode == "disabled"
    if client.HasField("access_point") and client.access_point.addresses and not go_without_tls:
        answer.metric.on = True
        answer.metric.endpoints.CopyFrom(client.access_point)
    return answer


MAX_CLIENT_PROPERTIES = 32
MAX_CLIENT_PROPERTIES_BYTES = 4096


def check_client_properties(properties: Mapping[str, str]) -> None:
    """Settings.client_properties (field 9, newer than rocketmq-apis v2.1.2): at most 32 keys and
    4 KiB of keys and values (UTF-8), no empty key; INVALID_CLIENT_PROPERTIES otherwise."""
    if len(properties) > MAX_CLIENT_PROPERTIES:
        raise ProtocolError(pb.Code.INVALID_CLIENT_PROPERTIES,
                            f"{len(properties)} client properties; the limit is {MAX_CLIENT_PROPERTIES}")
    size = sum(len(key.encode()) + len(value.encode()) for key, value in properties.items())
    if size > MAX_CLIENT_PROPERTIES_BYTES:
        raise ProtocolError(pb.Code.INVALID_CLIENT_PROPERTIES,
                            f"client properties take {size} bytes; the limit is {MAX_CLIENT_PROPERTIES_BYTES}")
    if any(not key.strip() for key in properties):
        raise ProtocolError(pb.Code.INVALID_CLIENT_PROPERTIES, "a client property has a blank key")
