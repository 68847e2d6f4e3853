"""Errors the broker layer raises. No protobuf here: rmqproxy/errors.py maps them to codes.

    BrokerError
    ├── ConsumeDisabled       the group is paused by an operator
    ├── Unsupported           a feature this server does not offer (yet)
    ├── IllegalLiteTopic      a lite topic name that is blank, too long or has odd characters
    ├── LiteTopicQuotaExceeded          a parent has as many lite topics as allowed
    ├── LiteSubscriptionQuotaExceeded   a client subscribes to more lite topics than allowed
    └── StaleLiteSubscription           a SyncLiteSubscription older than the one applied (not an error
                                        to the client: it is answered OK, and not applied)
"""

from __future__ import annotations


class BrokerError(Exception):
    pass


class ConsumeDisabled(BrokerError):
    def __init__(self, group: str) -> None:
        super().__init__(f"consumption is disabled for consumer group {group!r}")
        self.group = group


class Unsupported(BrokerError):
    pass


class IllegalLiteTopic(BrokerError):
    pass


class LiteTopicQuotaExceeded(BrokerError):
    pass


class LiteSubscriptionQuotaExceeded(BrokerError):
    pass


class StaleLiteSubscription(BrokerError):
    def __init__(self, version: int, applied: int) -> None:
        super().__init__(f"not applied: version {version} is older than version {applied}, applied already")
        self.version = version
        self.applied = applied
