"""ACL 2.0 matching: which entry decides whether a user may take an action on a resource.

For one action on one resource, the candidate entries are the user's entries whose resource
matches (``Topic:orders`` exactly, ``Topic:ord*`` by prefix, ``*`` anything), whose actions include
it (or ``All``), and whose sources (CIDRs) include the caller's address (no sources: anywhere).
The most specific candidates decide: an exact name, else the longest prefix, else ``*``. Among
equally specific candidates Deny wins (the reference sorts Allow first, against its own comment;
we take the safe reading). No candidate: denied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.auth_model import AclEntry, Action, Decision, ResourceType

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_TYPES = {t.value.lower(): t for t in (ResourceType.TOPIC, ResourceType.GROUP)}


@dataclass(frozen=True, slots=True)
class Resource:
    kind: ResourceType | None
    """None: ``*``, any resource of any type."""
    name: str
    prefix: bool

    @property
    def specificity(self) -> tuple[int, int]:
        if self.kind is None:
            return (0, 0)
        return (1, len(self.name)) if self.prefix else (2, len(self.name))

    def matches(self, kind: ResourceType, name: str) -> bool:
        if self.kind is None:
            return True
        if self.kind is not kind:
            return False
        return name.startswith(self.name) if self.prefix else name == self.name

    def __str__(self) -> str:
        return "*" if self.kind is None else f"{self.kind.value}:{self.name}{'*' if self.prefix else ''}"


def parse_resource(text: str) -> Resource:
    """``*``, ``Topic:name``, ``Topic:prefix*``, ``Group:name``, ``Group:prefix*`` (type case-insensitive);
    ValueError otherwise."""
    text = text.strip()
    if text == "*":
        return Resource(None, "", False)
    kind_text, colon, name = text.partition(":")
    kind = _TYPES.get(kind_text.lower())
    if not colon or kind is None:
        raise ValueError(f"resource {text!r} is not *, Topic:NAME, Topic:PREFIX*, Group:NAME or Group:PREFIX*")
    prefix = name.endswith("*")
    if prefix:
        name = name[:-1]
    if "*" in name or (not name and not prefix) or "\x00" in name:
        raise ValueError(f"resource {text!r}: a name, or a prefix ending in one '*'")
    return Resource(kind, name, prefix)


def parse_sources(sources: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (a bare address is a /32 or /128); ValueError for anything else."""
    networks = []
    for source in sources:
        try:
            networks.append(ipaddress.ip_network(source.strip(), strict=False))
        except ValueError:
            raise ValueError(f"source {source!r} is not an IP address or CIDR") from None
    return tuple(networks)


def peer_address(peer: str) -> IPAddress | None:
    """The IP of a ``host:port`` or ``[v6]:port`` peer; None if it is not an IP (a unix socket)."""
    host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Rule:
    """An ACL entry, parsed once when the entries are loaded."""

    resource: Resource
    actions: frozenset[Action]
    deny: bool
    networks: tuple[IPNetwork, ...]

    @classmethod
    def of(cls, entry: AclEntry) -> Rule:
        return cls(parse_resource(entry.resource), entry.actions, entry.decision is Decision.DENY,
                   parse_sources(entry.sources))

    def covers(self, action: Action, address: IPAddress | None) -> bool:
        if action not in self.actions and Action.ALL not in self.actions:
            return False
        if not self.networks:
            return True
        return address is not None and any(address in n for n in self.networks if n.version == address.version)


def allowed(rules: Sequence[Rule], kind: ResourceType, name: str, action: Action, address: IPAddress | None) -> bool:
    best: tuple[int, int] | None = None
    deny = False
    for rule in rules:
        if not rule.resource.matches(kind, name) or not rule.covers(action, address):
            continue
        specificity = rule.resource.specificity
        if best is None or specificity > best:
            best, deny = specificity, rule.deny
        elif specificity == best:
            deny = deny or rule.deny
    return best is not None and not deny
