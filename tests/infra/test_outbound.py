"""The outbound policy: every address a host resolves to is checked; loopback,
link-local (cloud metadata included), private and other special ranges are closed
unless the operator allows them; a denied entry always wins."""

from __future__ import annotations

import pytest

from tracardi_daemon.config.env import RawValue
from tracardi_daemon.config.load import build_settings
from tracardi_daemon.config.settings import OutboundSettings
from tracardi_daemon.errors import ConfigError, InvalidInput
from tracardi_daemon.infra.outbound import OutboundPolicy, OutboundRefused


def resolving(table: dict[str, list[str]]) -> OutboundPolicy:
    """A policy whose resolver answers from ``table`` (real resolution needs DNS)."""
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]
    return OutboundPolicy(OutboundSettings(), resolver=resolve)


@pytest.mark.parametrize(("address", "word"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("10.1.2.3", "private"), ("172.20.0.1", "private"),
    ("192.168.1.1", "private"), ("fd00::1", "private"), ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"), ("::ffff:127.0.0.1", "loopback"),
])
def test_special_addresses_are_closed_by_default(address: str, word: str) -> None:
    with pytest.raises(OutboundRefused, match=rf"{word} address.*outbound\.allow"):
        OutboundPolicy(OutboundSettings()).check(address, 80)


def test_a_public_address_is_open_by_default() -> None:
    assert OutboundPolicy(OutboundSettings()).check("93.184.216.34", 443) == ["93.184.216.34"]


def test_every_resolved_address_is_checked() -> None:
    # a name with one public and one metadata address is refused, naming the address
    policy = resolving({"mixed.example.com": ["93.184.216.34", "169.254.169.254"]})
    with pytest.raises(OutboundRefused, match=r"mixed.example.com \(169.254.169.254\)"):
        policy.check("mixed.example.com", 80)


def test_a_name_that_does_not_resolve_is_an_os_error() -> None:
    with pytest.raises(OSError):
        resolving({}).check("nowhere.example.com", 80)


def test_the_real_resolver_resolves_localhost_to_loopback() -> None:
    with pytest.raises(OutboundRefused, match=r"localhost .*loopback"):
        OutboundPolicy(OutboundSettings()).check("localhost", 6379)


def test_allow_opens_ranges_and_names_and_deny_wins() -> None:
    policy = OutboundPolicy(OutboundSettings(allow=("127.0.0.0/8", "*.corp.example"),
                                             deny=("127.0.0.53", "bad.corp.example")))
    assert policy.check("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(OutboundRefused, match=r"denied by outbound\.deny"):
        policy.check("127.0.0.53", 80)
    with pytest.raises(OutboundRefused, match=r"denied by outbound\.deny"):
        policy.check("bad.corp.example", 80)
    named = OutboundPolicy(OutboundSettings(allow=("*.corp.example",)),
                           resolver=lambda host, port: ["10.0.0.7"])
    assert named.check("hooks.corp.example", 80) == ["10.0.0.7"]
    with pytest.raises(OutboundRefused, match="private"):
        named.check("corp.example.evil.com", 80)


def test_deny_closes_a_public_address() -> None:
    policy = OutboundPolicy(OutboundSettings(deny=("93.184.216.0/24",)))
    with pytest.raises(OutboundRefused, match="denied"):
        policy.check("93.184.216.34", 80)


def test_a_bad_entry_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(InvalidInput, match=r"outbound\.allow"):
        OutboundPolicy(OutboundSettings(allow=("not a host!",)))
    raw = {"outbound": {"deny": RawValue(["10.0.0.0/33"], "daemon.toml [outbound]", False)}}
    with pytest.raises(ConfigError, match=r"outbound\.deny.*10\.0\.0\.0/33"):
        build_settings(raw, "daemon.toml")
