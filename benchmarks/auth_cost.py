"""What the call pipeline's authentication and authorization cost per call, in-process, side by side.

    .venv/bin/python -m benchmarks.auth_cost --calls 20000 --rounds 7

The same SendMessage request goes through ``Pipeline.unary`` with a handler that answers at once,
three ways taking turns round by round (so machine load hits them alike): without auth, with auth
(a Normal user with prefix ACL entries; its header verified before, as a client's calls within one
second are), and with auth and a header never seen (a full HMAC each call). Prints microseconds per
call (medians over the rounds) and the ratios; the server's own cost per sent message is in the
side-by-side run (benchmarks/README.md, "Authentication").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from rmqproxy.auth import rights, signature
from rmqproxy.auth.access import AccessControl
from rmqproxy.clock import SystemClock
from rmqproxy.context import RequestContext
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pipeline import Pipeline
from storage.auth_model import AclEntry, Action, User
from storage.memory import MemoryStore


class _Context:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> Any:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def time_remaining(self) -> float | None:
        return 30.0


async def _round(pipeline: Pipeline, contexts: Sequence[_Context], request: rpc.SendMessageRequest) -> float:
    answer = rpc.SendMessageResponse(status=pb.Status(code=pb.Code.OK))

    async def handler(ctx: RequestContext) -> rpc.SendMessageResponse:
        return answer

    began = time.perf_counter()
    for context in contexts:
        response = await pipeline.unary("SendMessage", context, rpc.SendMessageResponse,  # type: ignore[arg-type]
                                        handler, lambda: rights.send(request))
        if response.status.code != pb.Code.OK:
            raise RuntimeError(response.status.message)
    return (time.perf_counter() - began) / len(contexts) * 1e6


async def main(calls: int, rounds: int) -> None:
    store = MemoryStore()
    access = AccessControl(store, SystemClock())
    await access.start()
    await store.create_user(User("bench-load", "bench-load-secret"))
    for resource, actions in (("Topic:bench*", {Action.PUB, Action.SUB}), ("Group:bench*", {Action.SUB})):
        await store.put_acl(AclEntry("bench-load", resource, frozenset(actions)))
    await access.reload()
    request = rpc.SendMessageRequest(messages=[pb.Message(topic=pb.Resource(name="bench-topic"))])
    base = (("x-mq-client-id", "bench"), ("x-mq-language", "PYTHON"))
    now = time.time()

    def signed(offset_s: int) -> _Context:
        date_time = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - offset_s))
        return _Context((*base, ("x-mq-date-time", date_time),
                         ("authorization", signature.authorization("bench-load", "bench-load-secret", date_time))))

    plain = [_Context(base)] * calls
    repeated = [signed(0)] * calls
    fresh = [signed(i % 3600) for i in range(calls)]  # distinct dates: a full verification each
    results: dict[str, list[float]] = {"no auth": [], "auth": [], "auth, new header each call": []}
    for _ in range(rounds):
        results["no auth"].append(await _round(Pipeline(), plain, request))
        results["auth"].append(await _round(Pipeline(access=access), repeated, request))
        access._verified.clear()  # every header unseen
        results["auth, new header each call"].append(await _round(Pipeline(access=access), fresh, request))
    baseline = statistics.median(results["no auth"])
    print(f"{calls} calls x {rounds} rounds, medians (us per call through Pipeline.unary):")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:28} {median:8.1f} us   x{median / baseline:.2f}   (+{median - baseline:.1f} us)")
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
