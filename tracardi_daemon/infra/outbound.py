"""Which hosts definitions may make the daemon connect to (import sources, dispatch
targets): a host name is resolved and every address it resolves to is checked against
the operator's allow and deny lists, with loopback, link-local, private and other
special ranges closed unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracardi_daemon.config.settings import OutboundSettings
from tracardi_daemon.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to; OSError when it does not resolve
Resolver = Callable[[str, int], list[str]]

# closed by default, each with the word a refusal names it by
_CLOSED: tuple[tuple[str, str], ...] = (
    ("127.0.0.0/8", "loopback"), ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"), ("fe80::/10", "link-local"),
    ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "private"), ("fc00::/7", "private"),
    ("0.0.0.0/8", "unspecified"), ("::/128", "unspecified"),
    ("224.0.0.0/4", "multicast"), ("ff00::/8", "multicast"),
    ("240.0.0.0/4", "reserved"), ("192.0.0.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"), ("64:ff9b::/96", "reserved"),
)
_CLOSED_NETWORKS = tuple((ipaddress.ip_network(cidr), word) for cidr, word in _CLOSED)


class OutboundRefused(InvalidInput):
    """The policy refuses a host; the message names the host, the address and the
    setting that would allow it, never what answers there."""


@dataclass(frozen=True)
class _Entries:
    networks: tuple[Network, ...]
    names: tuple[str, ...]  # lowercased; "*.example.com" matches its subdomains

    def match_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == name or (name.startswith("*.") and host.endswith(name[1:]))
                   for name in self.names)

    def match_address(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _entries(values: Sequence[str], key: str) -> _Entries:
    networks: list[Network] = []
    names: list[str] = []
    for value in values:
        text = value.strip()
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        label = text.removeprefix("*.")
        if not label or not all(part.replace("-", "").isalnum() for part in label.split(".")):
            raise InvalidInput(f"{key}: {text[:80]!r} is neither an address, a CIDR range "
                               "nor a host name")
        names.append(text.lower().rstrip("."))
    return _Entries(tuple(networks), tuple(names))


def _resolve(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(entry[4][0]) for entry in found))


class OutboundPolicy:
    """``check(host, port)`` raises OutboundRefused unless every address of ``host``
    may be connected to."""

    def __init__(self, settings: OutboundSettings, resolver: Resolver = _resolve) -> None:
        self._allow = _entries(settings.allow, "outbound.allow")
        self._deny = _entries(settings.deny, "outbound.deny")
        self._resolver = resolver

    def check(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, all allowed; OSError when it does not resolve."""
        bare = host.strip("[]")
        if self._deny.match_name(bare):
            raise OutboundRefused(f"host {bare} is denied by outbound.deny")
        named = self._allow.match_name(bare)
        addresses = [bare] if _is_address(bare) else self._resolver(bare, port)
        for text in addresses:
            self._check_address(bare, _address(text), named)
        return addresses

    def _check_address(self, host: str, address: Address, named: bool) -> None:
        where = host if host == str(address) else f"{host} ({address})"
        if self._deny.match_address(address):
            raise OutboundRefused(f"{where} is denied by outbound.deny")
        if named or self._allow.match_address(address):
            return
        word = closed_range(address)
        if word is not None:
            raise OutboundRefused(f"{where} is a {word} address, closed to definitions; an "
                                  f"operator may open it with outbound.allow")


def closed_range(address: Address) -> str | None:
    """The word for the default-closed range ``address`` is in, or None."""
    return next((word for network, word in _CLOSED_NETWORKS if address in network), None)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _address(text: str) -> Address:
    # a link-local IPv6 address may come back with its zone: fe80::1%eth0; an
    # IPv4-mapped one (::ffff:127.0.0.1) is checked as the IPv4 address it reaches
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
