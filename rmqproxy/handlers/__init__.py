"""Protocol handlers: validate requests, convert between protobuf and domain values, call the broker.

One module per RPC family, as the reference proxy groups them: route, client, producer, consumer.
"""
