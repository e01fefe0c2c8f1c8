"""A resolver that refuses every name with an address outside the public internet, for image
downloads: aiohttp connects only to the addresses its resolver returned, so the address that was
checked is the one connected to, and a name that resolves elsewhere a moment later (DNS
rebinding) changes nothing."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Policy = Callable[[IPAddress], bool]


def is_public(ip: IPAddress) -> bool:
    return ip.is_global


class NonPublicAddress(OSError):
    """The name resolves to a loopback, private, link-local or reserved address."""


def check_public(host: str, address: str, public: Policy = is_public) -> None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if not public(ip):
        raise NonPublicAddress(f"{host} resolves to a non-public address ({ip})")


class PublicOnlyResolver(AbstractResolver):
    def __init__(self, public: Policy = is_public) -> None:
        self.public = public
        self._resolver: ThreadedResolver | None = None  # made on the running loop

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        found = await self._resolver.resolve(host, port, family)
        for result in found:
            check_public(host, result["host"], self.public)
        return found

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()
