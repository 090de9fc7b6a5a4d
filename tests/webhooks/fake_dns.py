"""A resolver for chosen names, swapped into the running event loop's `getaddrinfo`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from ipaddress import IPv6Address, ip_address
from typing import Any

import pytest

AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int],
]


class FakeDns:
    """Answers `answers[name]` for a name's first lookup and `later[name]` (if given) afterwards,
    as a DNS-rebinding attacker would; an empty answer means the name does not resolve. Other
    names go to the real resolver. Every lookup is recorded in `lookups`.
    """

    def __init__(
        self,
        answers: Mapping[str, Sequence[str]],
        *,
        later: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._answers = dict(answers)
        self._later = dict(later or {})
        self.lookups: list[tuple[str, int]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Call inside the event loop that will resolve."""
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def getaddrinfo(
            host: str, port: int, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
        ) -> list[AddrInfo] | list[Any]:
            self.lookups.append((host, port))
            if host not in self._answers:
                return await real(host, port, family=family, type=type, proto=proto, flags=flags)
            seen_before = self.lookups.count((host, port)) > 1
            addresses = self._later.get(host) if seen_before else None
            return self._infos(addresses if addresses is not None else self._answers[host], port)

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)

    @staticmethod
    def _infos(addresses: Sequence[str], port: int) -> list[AddrInfo]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[AddrInfo] = []
        for text in addresses:
            if isinstance(ip_address(text), IPv6Address):
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port)))
        return infos
