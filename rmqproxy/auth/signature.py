"""The clients' request signature (RocketMQ 5.x gRPC clients, every language alike)::

    authorization: MQv2-HMAC-SHA1 Credential=<access key>, SignedHeaders=x-mq-date-time, Signature=<hex>
    x-mq-date-time: yyyyMMddTHHmmssZ

Signature = hex(HMAC-SHA1(key = secret key, message = the x-mq-date-time value)). Java, Go, Python
and Node.js write the date as the client's LOCAL time with a literal ``Z``: it says nothing reliable
about the time zone, so the window such a date is accepted in spans every zone (UTC-12 to UTC+14)
plus the allowed skew, and only refuses dates more than about a day off, malformed ones, and
replays older than that. The Rust client writes RFC 3339 with its real offset: that date must be
within the skew (docs/auth.md).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
from typing import NamedTuple

ALGORITHM = "MQv2-HMAC-SHA1"
DATE_HEADER = "x-mq-date-time"
_EARLIEST_ZONE_MS = -12 * 3600_000
_LATEST_ZONE_MS = 14 * 3600_000


class Credentials(NamedTuple):
    access_key: str
    signature: str


class BadAuthorization(ValueError):
    pass


def sign(secret: str, date_time: str) -> str:
    return hmac.new(secret.encode(), date_time.encode(), hashlib.sha1).hexdigest()


def authorization(access_key: str, secret: str, date_time: str) -> str:
    """The header a client sends (used by our own admin command and by tests)."""
    return (f"{ALGORITHM} Credential={access_key}, SignedHeaders={DATE_HEADER}, "
            f"Signature={sign(secret, date_time)}")


def parse(header: str) -> Credentials:
    """The access key and signature of an authorization header; BadAuthorization if it is not one.
    An empty access key (the Python client's header without credentials) comes back empty."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise BadAuthorization(f"the authorization header is not {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, equals, value = part.strip().partition("=")
        if not equals:
            raise BadAuthorization("the authorization header is malformed")
        fields[key] = value.strip()
    if "Credential" not in fields:
        raise BadAuthorization("the authorization header has no Credential")
    access_key = fields["Credential"].split("/", 1)[0]
    if not access_key:
        return Credentials("", "")
    signed = fields.get("SignedHeaders", "")
    if signed.lower() != DATE_HEADER:
        raise BadAuthorization(f"the authorization header must sign {DATE_HEADER} (signs {signed[:40]!r})")
    signature = fields.get("Signature", "")
    if not signature:
        raise BadAuthorization("the authorization header has no Signature")
    return Credentials(access_key, signature)


def verify(secret: str, date_time: str, signature: str) -> bool:
    """Constant-time comparison of the expected signature with the one given (case-insensitive hex)."""
    return hmac.compare_digest(sign(secret, date_time).encode(), signature.lower().encode("ascii", "replace"))


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?(?:([Zz])|([+-])(\d\d):(\d\d))")


def _epoch_ms(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise BadAuthorization(f"{DATE_HEADER} is not a valid time")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * 1000


def date_ms(date_time: str) -> tuple[int, bool]:
    """Epoch ms of an x-mq-date-time value, and whether its zone is known. Two forms are sent:
    ``yyyyMMddTHHmmssZ`` (Java, Go, Python, Node.js: local time, the ``Z`` meaningless) and
    RFC 3339 with its real offset (the Rust client). BadAuthorization for anything else."""
    if len(date_time) == 16 and date_time[8] == "T" and date_time[15] == "Z":
        digits = date_time[:8] + date_time[9:15]
        if digits.isdigit():
            return _epoch_ms(int(digits[:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]),
                             int(digits[10:12]), int(digits[12:14])), False
    match = _RFC3339.fullmatch(date_time)
    if match is None:
        raise BadAuthorization(f"{DATE_HEADER} must be yyyyMMddTHHmmssZ or RFC 3339")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    written = _epoch_ms(year, month, day, hour, minute, second)
    if match.group(7):
        return written, True
    offset_ms = (int(match.group(9)) * 60 + int(match.group(10))) * 60_000
    return written - offset_ms if match.group(8) == "+" else written + offset_ms, True


def date_problem(date_time: str, now_ms: int, skew_ms: int) -> str | None:
    """Why the date is refused, or None. With its zone known (RFC 3339) it must be within
    ``skew_ms`` of now; local time written as UTC must lie within [now - 12 h - skew, now + 14 h +
    skew] (any time zone, from a clock off by at most ``skew_ms``)."""
    written, zoned = date_ms(date_time)
    earliest, latest = (-skew_ms, skew_ms) if zoned else (_EARLIEST_ZONE_MS - skew_ms, _LATEST_ZONE_MS + skew_ms)
    if not now_ms + earliest <= written <= now_ms + latest:
        return f"{DATE_HEADER} {date_time} is too far from the server's time" + ("" if zoned else " (in any time zone)")
    return None


def date_expiry_ms(date_time: str, skew_ms: int) -> int:
    """The last moment (epoch ms) at which :func:`date_problem` still accepts this date."""
    written, zoned = date_ms(date_time)
    return written + skew_ms if zoned else written - _EARLIEST_ZONE_MS + skew_ms


def format_date(now_ms: int) -> str:
    """``yyyyMMddTHHmmssZ`` of a UTC time (what our admin command sends)."""
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ms / 1000))
