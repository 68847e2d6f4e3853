"""Retry policies of consumer groups, and their translation into what each client understands.

A group's policy is either *customized* (a list of delays: attempt n waits delay n, the last one
repeating) or *exponential* (initial x multiplier^(n-1), capped). Clients read only one form:
the Python client only customized, the Node.js client only exponential, Java either. So each
form can be turned into the other: exponential expands exactly into a list; a list becomes the
geometric curve through its first and last delays (same first and last delay, same number of
steps), which is the closest single exponential to RocketMQ's default levels.
"""

from __future__ import annotations

from dataclasses import dataclass

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

DEFAULT_LEVELS_MS: tuple[int, ...] = (
    1 * SECOND, 5 * SECOND, 10 * SECOND, 30 * SECOND,
    1 * MINUTE, 2 * MINUTE, 3 * MINUTE, 4 * MINUTE, 5 * MINUTE, 6 * MINUTE, 7 * MINUTE, 8 * MINUTE,
    9 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE, 1 * HOUR, 2 * HOUR,
)


@dataclass(frozen=True, slots=True)
class CustomizedBackoff:
    delays_ms: tuple[int, ...] = DEFAULT_LEVELS_MS

    def delay_ms(self, attempt: int) -> int:
        """Delay before redelivery after delivery ``attempt`` (1-based) failed."""
        index = min(max(attempt, 1), len(self.delays_ms)) - 1
        return self.delays_ms[index]


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    initial_ms: int
    max_ms: int
    multiplier: float

    def delay_ms(self, attempt: int) -> int:
        delay = self.initial_ms * self.multiplier ** (max(attempt, 1) - 1)
        return int(min(delay, self.max_ms))


RetryPolicy = CustomizedBackoff | ExponentialBackoff

PRODUCER_BACKOFF = ExponentialBackoff(initial_ms=10, max_ms=SECOND, multiplier=2.0)
PRODUCER_MAX_ATTEMPTS = 3


def as_customized(policy: RetryPolicy, max_attempts: int) -> CustomizedBackoff:
    if isinstance(policy, CustomizedBackoff):
        return policy
    steps = max(max_attempts - 1, 1)
    return CustomizedBackoff(tuple(policy.delay_ms(n) for n in range(1, steps + 1)))


def as_exponential(policy: RetryPolicy) -> ExponentialBackoff:
    if isinstance(policy, ExponentialBackoff):
        return policy
    delays = policy.delays_ms
    first, last = delays[0], delays[-1]
    if len(delays) == 1 or first <= 0 or last <= first:
        return ExponentialBackoff(first, max(first, last), 1.0)
    multiplier = (last / first) ** (1 / (len(delays) - 1))
    return ExponentialBackoff(first, last, round(multiplier, 4))
