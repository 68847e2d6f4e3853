"""The clients' request signature (RocketMQ 5.x gRPC clients, every language alike)::

    authorization: MQv2-HMAC-SHA1 Credential=<access key>, SignedHeaders=x-mq-date-time, Signature=<hex>
    x-mq-date-time: yyyyMMddTHHmmssZ

Signature = hex(HMAC-SHA1(key = secret key, message = the x-mq-date-time value)). The date is the
client's LOCAL time with a literal ``Z``: it says nothing reliable about the time zone, so the window
a date is accepted in spans every zone (UTC-12 to UTC+14) plus the allowed skew, and only refuses
dates more than about a day off, malformed ones, and replays older than that (docs/auth.md).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
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


def date_ms(date_time: str) -> int:
    """Epoch ms of a ``yyyyMMddTHHmmssZ`` value read as UTC; BadAuthorization if malformed."""
    if len(date_time) != 16 or date_time[8] != "T" or date_time[15] != "Z":
        raise BadAuthorization(f"{DATE_HEADER} must be yyyyMMddTHHmmssZ")
    digits = date_time[:8] + date_time[9:15]
    if not digits.isdigit():
        raise BadAuthorization(f"{DATE_HEADER} must be yyyyMMddTHHmmssZ")
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise BadAuthorization(f"{DATE_HEADER} is not a valid time")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * 1000


def date_problem(date_time: str, now_ms: int, skew_ms: int) -> str | None:
    """Why the date is refused, or None: it must lie within [now - 12 h - skew, now + 14 h + skew]
    (local time in any zone, written as if UTC, from a clock off by at most ``skew_ms``)."""
    written = date_ms(date_time)
    if not now_ms + _EARLIEST_ZONE_MS - skew_ms <= written <= now_ms + _LATEST_ZONE_MS + skew_ms:
        return f"{DATE_HEADER} {date_time} is too far from the server's time (in any time zone)"
    return None


def format_date(now_ms: int) -> str:
    """``yyyyMMddTHHmmssZ`` of a UTC time (what our admin command sends)."""
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ms / 1000))
