"""rmqproxy: a RocketMQ 5.x gRPC server on a pluggable message store."""

__version__ = "0.1.0"
