"""The SSRF guard: which URLs an organization's webhooks may reach.

A webhook URL is chosen by a tenant, and the server sends requests to it from inside our network,
so by default it may only reach globally routable addresses: never loopback, private, link-local
(cloud metadata at 169.254.169.254), shared, multicast or reserved space, in any of their
spellings. `allowed_networks` (the setting `webhook_allowed_networks`) opens chosen internal
networks, e.g. 127.0.0.0/8 for a receiver on the same machine.

The URL is parsed with yarl, the parser of aiohttp, which the sender uses, so the guard and the
sender cannot disagree on which host a URL names. The sender then connects to the addresses
`resolve` returned, not to a fresh DNS answer (see `sender.py`).
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import TypeAlias

from yarl import URL

from chatflow.domain.errors import WebhookUrlForbiddenError

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = ("http", "https")

# RFC 6598 carrier-grade NAT space: `is_private` says False or True depending on the Python
# version, and `is_global` is False, so it is named here to not depend on either.
_SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")
# RFC 6052: a NAT64 translator reaches the IPv4 address held in the last 32 bits.
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
# RFC 8215: prefixes of a site's own translators, internal by definition.
_NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")
# Hosts inet_aton() may read as IPv4 in a legacy spelling: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
# getaddrinfo() accepts them too, so the guard must see the address they denote.
_LEGACY_IPV4_HOST = re.compile(r"[0-9a-fx.]+")
# What a host may be made of once yarl has lowercased it and IDNA-encoded any Unicode.
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_SETTING_NAME = "CHATFLOW_WEBHOOK_ALLOWED_NETWORKS"


@dataclass(frozen=True, slots=True)
class UrlGuard:
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_setting(cls, text: str) -> UrlGuard:
        """Parse the comma-separated CIDR list of `Settings.webhook_allowed_networks`."""
        networks: list[IPNetwork] = []
        for raw_entry in text.split(","):
            entry = raw_entry.strip()
            if not entry:
                continue
            try:
                networks.append(ip_network(entry))
            except ValueError as exc:
                raise ValueError(
                    f"webhook_allowed_networks: {entry!r} is not a network in CIDR notation "
                    f"such as 127.0.0.0/8 or fd00::/8 ({exc})"
                ) from exc
        return cls(tuple(networks))

    def check_syntax(self, url: str) -> None:
        """Refuse URLs that are malformed, carry credentials, or name a forbidden IP literal.

        No DNS: call it when a URL is saved. `resolve` does this check again before its own.
        """
        self._parse(url)

    async def resolve(self, url: str) -> list[IPAddress]:
        """The addresses the URL's host stands for now, all of them allowed, or raise.

        One forbidden address among several refuses the whole URL: the connection could have
        gone to any of them. Resolution runs on the event loop's resolver and has no time limit
        of its own; callers bound it (the sender's attempt timeout does).
        """
        parsed = self._parse(url)
        host = parsed.raw_host
        assert host is not None  # `_parse` refuses a URL without a host
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise WebhookUrlForbiddenError(
                f"the host {host} could not be resolved ({reason})"
            ) from exc
        addresses: list[IPAddress] = []
        for *_, sockaddr in infos:
            address = ip_address(sockaddr[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise WebhookUrlForbiddenError(f"the host {host} has no IP address")
        for address in addresses:
            self._refuse_if_internal(host, address)
        return addresses

    def refusal_reason(self, address: IPAddress) -> str | None:
        """Why webhooks may not reach `address`, or None when they may."""
        if any(address in network for network in self.allowed_networks):
            return None
        if isinstance(address, IPv6Address):
            if address.ipv4_mapped is not None:
                # ::ffff:a.b.c.d is the IPv4 host itself on a dual-stack socket.
                return self.refusal_reason(address.ipv4_mapped)
            if address in _NAT64_WELL_KNOWN:
                embedded = IPv4Address(int(address) & 0xFFFF_FFFF)
                inner = self.refusal_reason(embedded)
                return None if inner is None else f"NAT64 for {embedded}, {inner}"
            if address.sixtofour is not None:
                inner = self.refusal_reason(address.sixtofour)
                if inner is not None:
                    return f"6to4 for {address.sixtofour}, {inner}"
        return _internal_kind(address)

    def _parse(self, url: str) -> URL:
        if len(url) > MAX_URL_LENGTH:
            raise WebhookUrlForbiddenError(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            parsed = URL(url)
        except ValueError as exc:
            raise WebhookUrlForbiddenError(f"not a valid URL ({exc})") from exc
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise WebhookUrlForbiddenError("the URL must start with http:// or https://")
        host = parsed.raw_host
        if not host:
            raise WebhookUrlForbiddenError("the URL has no host")
        if parsed.raw_user or parsed.raw_password:
            raise WebhookUrlForbiddenError("the URL must not carry credentials (user:password@)")
        if "#" in url:
            raise WebhookUrlForbiddenError("the URL must not have a fragment (#…)")
        port = parsed.explicit_port
        if port is not None and not 1 <= port <= 65535:
            raise WebhookUrlForbiddenError(f"the port {port} is not between 1 and 65535")
        literal = _ip_literal(host)
        if literal is not None:
            self._refuse_if_internal(host, literal)
        elif not _HOSTNAME.fullmatch(host):
            raise WebhookUrlForbiddenError(f"the host {host!r} is not a valid domain name")
        return parsed

    def _refuse_if_internal(self, host: str, address: IPAddress) -> None:
        reason = self.refusal_reason(address)
        if reason is None:
            return
        where = str(address) if host == str(address) else f"{host} ({address})"
        raise WebhookUrlForbiddenError(
            f"{where} is {reason}; webhooks may only reach public addresses unless "
            f"{_SETTING_NAME} allows that network",
        )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4_HOST.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _internal_kind(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, IPv4Address) and address in _SHARED_ADDRESS_SPACE:
        return "in the shared address space 100.64.0.0/10"
    if isinstance(address, IPv6Address) and address in _NAT64_LOCAL_USE:
        return "a local-use NAT64 address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally reachable address"
    return None
