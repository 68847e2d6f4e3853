"""Authentication and authorization units: the ACL matcher, the clients' signature, the access
control built from a store (users, ACLs, revocation of open streams), and a fuzz of the
authorization header."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

import pytest

from rmqproxy.auth import rights, signature
from rmqproxy.auth.access import AccessControl
from rmqproxy.auth.acl import Rule, allowed, parse_resource, peer_address
from rmqproxy.clock import FakeClock
from rmqproxy.context import RequestContext
from rmqproxy.errors import AccessDenied, to_grpc_status, to_status
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code
from storage.auth_model import AclEntry, Action, Decision, ResourceType, User, UserStatus, UserType
from storage.memory import MemoryStore

TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
PUB, SUB = Action.PUB, Action.SUB
HERE = peer_address("127.0.0.1:5000")


def rule(resource: str, *actions: Action, deny: bool = False, sources: tuple[str, ...] = ()) -> Rule:
    return Rule.of(AclEntry("u", resource, frozenset(actions), Decision.DENY if deny else Decision.ALLOW, sources))


# -- the matcher -------------------------------------------------------------------------------


def test_no_entry_denies() -> None:
    assert not allowed([], TOPIC, "orders", PUB, HERE)
    assert not allowed([rule("Topic:other", PUB)], TOPIC, "orders", PUB, HERE)
    assert not allowed([rule("Topic:orders", SUB)], TOPIC, "orders", PUB, HERE)
    assert not allowed([rule("Group:orders", PUB)], TOPIC, "orders", PUB, HERE)


def test_exact_prefix_and_any() -> None:
    assert allowed([rule("Topic:orders", PUB)], TOPIC, "orders", PUB, HERE)
    assert not allowed([rule("Topic:orders", PUB)], TOPIC, "orders2", PUB, HERE)
    assert allowed([rule("Topic:ord*", PUB)], TOPIC, "orders", PUB, HERE)
    assert allowed([rule("Topic:*", PUB)], TOPIC, "anything", PUB, HERE)
    assert not allowed([rule("Topic:*", PUB)], GROUP, "anything", PUB, HERE)
    assert allowed([rule("*", PUB)], GROUP, "anything", PUB, HERE)
    assert allowed([rule("*", Action.ALL)], TOPIC, "x", SUB, HERE)
    # Only * holds cluster-wide rights (list topics, manage users).
    assert allowed([rule("*", Action.LIST)], ResourceType.CLUSTER, "", Action.LIST, HERE)
    assert not allowed([rule("Topic:*", Action.LIST)], ResourceType.CLUSTER, "", Action.LIST, HERE)


def test_most_specific_decides() -> None:
    # exact beats prefix beats *, whichever way the decisions go
    rules = [rule("*", PUB), rule("Topic:ord*", PUB, deny=True), rule("Topic:orders", PUB)]
    assert allowed(rules, TOPIC, "orders", PUB, HERE)
    assert not allowed(rules, TOPIC, "ordinal", PUB, HERE)
    assert allowed(rules, TOPIC, "invoices", PUB, HERE)
    # the longer prefix beats the shorter one
    rules = [rule("Topic:o*", PUB, deny=True), rule("Topic:ord*", PUB)]
    assert allowed(rules, TOPIC, "orders", PUB, HERE)
    assert not allowed(rules, TOPIC, "other", PUB, HERE)
    # an entry that does not cover the action does not take part
    rules = [rule("Topic:orders", SUB, deny=True), rule("Topic:ord*", PUB)]
    assert allowed(rules, TOPIC, "orders", PUB, HERE)


def test_deny_wins_at_equal_specificity() -> None:
    rules = [rule("Topic:orders", PUB, SUB), rule("Topic:orders", PUB, deny=True)]
    assert not allowed(rules, TOPIC, "orders", PUB, HERE)
    assert allowed(rules, TOPIC, "orders", SUB, HERE)
    assert not allowed(list(reversed(rules)), TOPIC, "orders", PUB, HERE)


def test_sources() -> None:
    only_lan = [rule("Topic:orders", PUB, sources=("10.0.0.0/8",))]
    assert not allowed(only_lan, TOPIC, "orders", PUB, HERE)
    assert allowed(only_lan, TOPIC, "orders", PUB, peer_address("10.1.2.3:4000"))
    assert not allowed(only_lan, TOPIC, "orders", PUB, None)
    # a deny limited to some addresses leaves the others to the allow
    rules = [rule("Topic:orders", PUB), rule("Topic:orders", PUB, deny=True, sources=("10.0.0.0/8", "::1"))]
    assert allowed(rules, TOPIC, "orders", PUB, HERE)
    assert not allowed(rules, TOPIC, "orders", PUB, peer_address("10.9.9.9:1"))
    assert not allowed(rules, TOPIC, "orders", PUB, peer_address("[::1]:1"))


def test_peer_address() -> None:
    assert str(peer_address("127.0.0.1:5000")) == "127.0.0.1"
    assert str(peer_address("[::1]:5000")) == "::1"
    assert peer_address("/tmp/socket") is None


@pytest.mark.parametrize("text", ["", "Topic", "Topic:", "Queue:x", "Topic:a*b", "Topic:**", "topic"])
def test_bad_resources(text: str) -> None:
    with pytest.raises(ValueError):
        parse_resource(text)


def test_resources_normalized() -> None:
    assert str(parse_resource(" topic:orders ")) == "Topic:orders"
    assert str(parse_resource("GROUP:g*")) == "Group:g*"
    assert str(parse_resource("*")) == "*"


# -- the signature ---------------------------------------------------------------------------


def test_signature_round_trip() -> None:
    header = signature.authorization("alice", "s3cret-key", "20261203T101010Z")
    credentials = signature.parse(header)
    assert credentials.access_key == "alice"
    assert signature.verify("s3cret-key", "20261203T101010Z", credentials.signature)
    assert signature.verify("s3cret-key", "20261203T101010Z", credentials.signature.upper())
    assert not signature.verify("s3cret-kez", "20261203T101010Z", credentials.signature)
    assert not signature.verify("s3cret-key", "20261203T101011Z", credentials.signature)


def test_known_signature() -> None:
    # HMAC-SHA1(key="secret", msg="20240101T000000Z"), computed independently with openssl:
    # printf 20240101T000000Z | openssl dgst -sha1 -hmac secret
    assert signature.sign("secret", "20240101T000000Z") == "2e5621239cbfdccc449dbd2e028cf60e7c6a592d"


def test_python_client_without_credentials_is_anonymous() -> None:
    assert signature.parse("MQv2-HMAC-SHA1 Credential=, SignedHeaders=x-mq-date-time, Signature=").access_key == ""


def test_dates() -> None:
    now = signature.date_ms("20261203T120000Z")[0]
    skew = 5 * 60_000
    # local time written as UTC: any zone from UTC-12 to UTC+14 passes
    assert signature.date_problem("20261203T000000Z", now, skew) is None
    assert signature.date_problem("20261204T020000Z", now, skew) is None
    assert signature.date_problem("20261203T000000Z", now + 13 * 3600_000, skew) is not None
    assert signature.date_problem("20261204T030000Z", now, skew) is not None
    # RFC 3339 (the Rust client) has its real offset: only the skew is allowed
    assert signature.date_problem("2026-12-03T12:04:00.123456789Z", now, skew) is None
    assert signature.date_problem("2026-12-03T13:01:00+01:00", now, skew) is None
    assert signature.date_problem("2026-12-03T12:06:00Z", now, skew) is not None
    assert signature.date_problem("2026-12-03T14:00:00+01:00", now, skew) is not None
    for bad in ("", "20261203T120000", "2026120ST120000Z", "20261303T120000Z", "yesterday"):
        with pytest.raises(signature.BadAuthorization):
            signature.date_problem(bad, now, skew)


# -- access control over a store ------------------------------------------------------------


def context(header: str = "", date_time: str = "", peer: str = "127.0.0.1:5000") -> RequestContext:
    return RequestContext("client", "PYTHON", "5.1", "", peer, None, authorization=header, date_time=date_time)


def signed(user: str, secret: str, clock: FakeClock) -> RequestContext:
    date_time = signature.format_date(clock.now_ms())
    return context(signature.authorization(user, secret, date_time), date_time)


@pytest.fixture
async def access() -> Any:
    store = MemoryStore()
    clock = FakeClock()
    control = AccessControl(store, clock)
    await control.start("root", "root-secret")
    await store.create_user(User("alice", "alice-secret", UserType.NORMAL, UserStatus.ENABLED, 0))
    await store.put_acl(AclEntry("alice", "Topic:orders", frozenset({PUB})))
    await control.reload()
    yield control, store, clock
    await store.close()


def refusal(call: Any) -> AccessDenied:
    with pytest.raises(AccessDenied) as info:
        call()
    return info.value


async def test_authenticate(access: Any) -> None:
    control, store, clock = access
    assert control.authenticate(signed("alice", "alice-secret", clock), required=True) == "alice"
    assert "bad signature" in refusal(lambda: control.authenticate(signed("alice", "wrong", clock),
                                                                   required=True)).message
    assert "unknown user 'bob'" in refusal(lambda: control.authenticate(signed("bob", "x", clock),
                                                                        required=True)).message
    assert "no credentials" in refusal(lambda: control.authenticate(context(), required=True)).message
    assert control.authenticate(context(), required=False) is None
    await store.update_user(User("alice", "alice-secret", UserType.NORMAL, UserStatus.DISABLED, 0))
    await control.reload()
    denied = refusal(lambda: control.authenticate(signed("alice", "alice-secret", clock), required=True))
    assert "disabled" in denied.message and "alice-secret" not in denied.message
    assert to_status(denied)[0] == Code.UNAUTHORIZED
    assert to_grpc_status(denied)[0].name == "UNAUTHENTICATED"


async def test_replayed_header_expires(access: Any) -> None:
    """A header verified once is taken again (clients sign a second's calls alike) only while its
    date is inside the window."""
    control, _, clock = access
    ctx = signed("alice", "alice-secret", clock)
    assert control.authenticate(ctx, required=True) == "alice"
    await clock.advance(11 * 3600_000)
    assert control.authenticate(ctx, required=True) == "alice"
    await clock.advance(2 * 3600_000)
    assert "too far from the server's time" in refusal(lambda: control.authenticate(ctx, required=True)).message


async def test_authorize(access: Any) -> None:
    control, _, clock = access
    ctx = signed("alice", "alice-secret", clock)
    control.authorize("alice", ctx, [rights.topic("orders", (PUB,))])
    control.authorize("alice", ctx, [rights.topic("orders", (PUB, SUB))])  # QueryRoute: Pub or Sub
    denied = refusal(lambda: control.authorize("alice", ctx, rights.consume("orders", "g")))
    assert denied.message == "user 'alice' has no Sub right on Topic orders"
    assert to_grpc_status(denied)[0].name == "PERMISSION_DENIED"
    control.authorize("root", ctx, rights.consume("orders", "g"))  # Super skips the ACLs
    control.authorize("alice", ctx, [])  # nothing needed


async def test_revocation_ends_watched_streams(access: Any) -> None:
    control, store, clock = access
    ctx = signed("alice", "alice-secret", clock)
    ended: list[str] = []

    async def stream(needs: Any) -> None:
        watch = control.watch("alice", ctx, needs)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            ended.append(watch.reason.message if watch.reason else "cancelled")
            raise
        finally:
            control.unwatch(watch)

    publishing = asyncio.create_task(stream([rights.topic("orders", (PUB,))]))
    other = asyncio.create_task(stream([]))
    await asyncio.sleep(0)
    await store.delete_acl("alice", "Topic:orders")
    await control.changed()
    await asyncio.sleep(0)
    assert ended == ["user 'alice' has no Pub right on Topic orders"]
    assert publishing.done() and not other.done()
    await store.delete_user("alice")
    await control.changed()
    await asyncio.sleep(0)
    assert ended[1] == "unknown user 'alice'"
    assert other.done()


# -- fuzz of the authorization header -------------------------------------------------------


async def test_fuzzed_headers_are_refused_cleanly(access: Any) -> None:
    """Whatever arrives in the header, the answer is AccessDenied (UNAUTHORIZED) or a verified user,
    never another exception; and a header whose signature is not alice's never passes."""
    control, _, clock = access
    date_time = signature.format_date(clock.now_ms())
    good = signature.authorization("alice", "alice-secret", date_time)
    rng = random.Random(14)
    alphabet = string.printable + "\u00e9\u4e2d\x00"
    for _ in range(3000):
        kind = rng.randrange(4)
        if kind == 0:
            header = "".join(rng.choice(alphabet) for _ in range(rng.randrange(80)))
        elif kind == 1:  # mutate one character of a good header
            position = rng.randrange(len(good))
            header = good[:position] + rng.choice(alphabet) + good[position + 1:]
        elif kind == 2:  # cut it
            header = good[:rng.randrange(len(good))]
        else:  # shuffle its fields
            fields = good.split(" ", 1)[1].split(", ")
            rng.shuffle(fields)
            header = "MQv2-HMAC-SHA1 " + ", ".join(fields)
        try:
            user = control.authenticate(context(header, date_time), required=True)
        except AccessDenied:
            continue
        assert user == "alice"
        assert signature.parse(header).signature.lower() == signature.sign("alice-secret", date_time)
