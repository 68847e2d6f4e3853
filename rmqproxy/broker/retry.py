"""Consumer groups' retry policies, translated into the form each client understands.

A group's policy is either *customized* (a list of delays: attempt n waits delay n, the last one
repeating; RocketMQ's default is 18 levels from 1 s to 2 h) or *exponential* (initial x
multiplier^(n-1), capped). Clients read only one form: the Python client only customized (and
only whole seconds of each delay), the Node.js client only exponential, Java either. So:

* exponential -> customized expands exactly, one delay per retry (``max_attempts - 1`` of them);
  for the Python client each delay is rounded up to whole seconds, never below 1 s, because it
  ignores fractions (a 500 ms delay would otherwise become an immediate retry);
* customized -> exponential is the geometric curve through the first and last delays over the
  same number of steps: the first and the longest delay are exact, the ones between are as close
  as one multiplier allows. For the 18 default levels that is 1 s x ~1.69 capped at 2 h.
"""

from __future__ import annotations

import math

from rmqproxy.durations import format_duration
from storage.model import SECOND, CustomizedBackoff, ExponentialBackoff, RetryPolicy

PRODUCER_BACKOFF = ExponentialBackoff(initial_ms=10, max_ms=SECOND, multiplier=2.0)
FIFO_DEFAULT_POLICY = CustomizedBackoff((SECOND,))
"""What a FIFO group retries with unless told otherwise: a fixed 1 s. A FIFO consumer retries a
failed message locally and its whole message group waits meanwhile, so RocketMQ's default levels
(up to 2 h) would stall the group; the reference orderly consumer also retries every second."""
PRODUCER_MAX_ATTEMPTS = 3


def as_customized(policy: RetryPolicy, max_attempts: int) -> CustomizedBackoff:
    if isinstance(policy, CustomizedBackoff):
        return policy
    steps = max(max_attempts - 1, 1)
    return CustomizedBackoff(tuple(policy.delay_ms(n) for n in range(1, steps + 1)))


def in_whole_seconds(policy: CustomizedBackoff) -> CustomizedBackoff:
    """Each delay rounded up to whole seconds (at least 1 s), for clients that drop fractions."""
    return CustomizedBackoff(tuple(max(SECOND, math.ceil(d / SECOND) * SECOND) for d in policy.delays_ms))


def as_exponential(policy: RetryPolicy) -> ExponentialBackoff:
    if isinstance(policy, ExponentialBackoff):
        return policy
    delays = policy.delays_ms
    first, last = delays[0], max(delays)
    if len(delays) == 1 or first <= 0 or last <= first:
        return ExponentialBackoff(first, max(first, last), 1.0)
    multiplier = (last / first) ** (1 / (len(delays) - 1))
    return ExponentialBackoff(first, last, round(multiplier, 4))


def describe(policy: RetryPolicy) -> str:
    """A one-line human description, durations in the CLI's own spelling."""
    if isinstance(policy, CustomizedBackoff):
        return "customized " + " ".join(format_duration(d) for d in policy.delays_ms)
    return (f"exponential initial {format_duration(policy.initial_ms)} x{policy.multiplier:g} "
            f"max {format_duration(policy.max_ms)}")
