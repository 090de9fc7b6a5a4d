from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, ip_address

import pytest
from tests.webhooks.fake_dns import FakeDns

from chatflow.domain.errors import ValidationError, WebhookUrlForbiddenError
from chatflow.webhooks.guard import IPAddress, UrlGuard

DEFAULT = UrlGuard()
LOOPBACK_ALLOWED = UrlGuard.from_setting("127.0.0.0/8, ::1/128")

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "100.64.0.1",  # shared address space, RFC 6598
    "100.127.255.254",
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped: the IPv4 host itself on a dual-stack socket
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible, deprecated
    "64:ff9b::7f00:1",  # NAT64 for 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 for 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 for 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 for 192.168.1.1
]

ALLOWED_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below the shared address space
    "100.128.0.1",  # just above it
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 for 8.8.8.8
]

REFUSED_URLS = [
    ("ftp://example.com/hook", "http:// or https://"),
    ("example.com/hook", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("https:///hook", "no host"),
    ("https://user:secret@example.com/hook", "credentials"),
    ("https://token@example.com/hook", "credentials"),
    ("https://example.com/hook#part", "fragment"),
    ("https://example.com/hook#", "fragment"),
    ("https://example.com:99999/hook", "Port out of range"),  # yarl refuses it while parsing
    ("https://example.com:0/hook", "between 1 and 65535"),
    ("https://exa mple.com/hook", "not a valid domain name"),
    # Parsers disagree on a backslash before "@": the host is either side of it, so refuse it.
    ("http://hooks.example.com\\@127.0.0.1/hook", "not a valid URL"),
    ("https://example.com/" + "a" * 2029, "longer than 2048"),
    ("http://127.0.0.1/hook", "loopback"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[fe80::1%25eth0]/hook", "link-local"),
    ("http://10.0.0.1:8080/hook", "private"),
    ("http://100.64.1.1/hook", "shared address space"),
    ("http://0/hook", "unspecified"),
    # Legacy IPv4 spellings that getaddrinfo() reads as 127.0.0.1.
    ("http://2130706433/hook", "loopback"),
    ("http://0x7f.1/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),
    ("http://017700000001/hook", "loopback"),
    ("http://127.1/hook", "loopback"),
]

ALLOWED_URLS = [
    "https://example.com/hook",
    "http://example.com:8080/hooks/in?token=abc",
    "HTTPS://EXAMPLE.COM/hook",
    "https://hooks.example.com./hook",
    "https://bücher.example/hook",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "http://134744072/hook",  # 8.8.8.8 in a legacy spelling: public, so allowed
    "https://example.com/" + "a" * 2028,  # exactly 2048 characters
]


def resolve(
    guard: UrlGuard,
    url: str,
    dns: FakeDns | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> list[IPAddress]:
    async def scenario() -> list[IPAddress]:
        if dns is not None and monkeypatch is not None:
            dns.install(monkeypatch)
        return await guard.resolve(url)

    return asyncio.run(scenario())


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_address_is_refused_by_default(address: str) -> None:
    assert DEFAULT.refusal_reason(ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED_ADDRESSES)
def test_public_address_is_allowed(address: str) -> None:
    assert DEFAULT.refusal_reason(ip_address(address)) is None


def test_shared_address_space_is_refused_whatever_ipaddress_thinks_of_it() -> None:
    # `is_private` for 100.64.0.0/10 changed between Python versions; the guard must not care.
    shared = IPv4Address("100.64.0.1")

    assert DEFAULT.refusal_reason(shared) == "in the shared address space 100.64.0.0/10"
    assert not shared.is_global


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_url_is_refused_with_a_clear_reason(url: str, reason: str) -> None:
    with pytest.raises(WebhookUrlForbiddenError, match=reason) as raised:
        DEFAULT.check_syntax(url)

    assert raised.value.code == "webhook_url_forbidden"
    assert isinstance(raised.value, ValidationError)


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_public_url_passes_the_syntax_check(url: str) -> None:
    DEFAULT.check_syntax(url)


def test_allowlisted_network_opens_loopback_and_nothing_else() -> None:
    guard = UrlGuard.from_setting("127.0.0.0/8")

    guard.check_syntax("http://127.0.0.1:9/x")
    assert resolve(guard, "http://127.0.0.1:9/x") == [ip_address("127.0.0.1")]
    assert guard.refusal_reason(ip_address("::ffff:127.0.0.1")) is None
    for still_refused in ("http://10.0.0.1/x", "http://169.254.169.254/x", "http://[::1]/x"):
        with pytest.raises(WebhookUrlForbiddenError):
            guard.check_syntax(still_refused)


def test_allowed_networks_setting_is_parsed_and_a_bad_entry_named() -> None:
    assert UrlGuard.from_setting("").allowed_networks == ()
    assert [str(n) for n in LOOPBACK_ALLOWED.allowed_networks] == ["127.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network in CIDR"):
        UrlGuard.from_setting("127.0.0.0/8,10.0.0.0/33")
    with pytest.raises(ValueError, match="'intranet' is not a network"):
        UrlGuard.from_setting("intranet")


def test_localhost_resolves_to_loopback_and_is_refused_by_default() -> None:
    with pytest.raises(WebhookUrlForbiddenError, match=r"localhost .* loopback"):
        resolve(DEFAULT, "http://localhost:8080/hook")

    addresses = resolve(LOOPBACK_ALLOWED, "http://localhost:8080/hook")
    assert addresses
    assert all(address.is_loopback for address in addresses)


def test_legacy_ipv4_spelling_is_refused_because_getaddrinfo_reads_it_as_loopback() -> None:
    # Why the guard decodes these: the system resolver connects them to 127.0.0.1.
    resolved = {info[4][0] for info in socket.getaddrinfo("0x7f.1", 80, type=socket.SOCK_STREAM)}
    assert resolved == {"127.0.0.1"}

    for url in ("http://2130706433/", "http://0x7f.1/", "http://017700000001/"):
        with pytest.raises(WebhookUrlForbiddenError, match="loopback"):
            resolve(DEFAULT, url)
        assert resolve(LOOPBACK_ALLOWED, url) == [ip_address("127.0.0.1")]


def test_metadata_address_is_refused_by_name_too(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns({"metadata.internal.example": ["169.254.169.254"]})

    url = "http://metadata.internal.example/latest"

    with pytest.raises(WebhookUrlForbiddenError, match=r"169\.254\.169\.254.*link-local"):
        resolve(DEFAULT, url, dns, monkeypatch)


def test_one_internal_address_among_public_ones_refuses_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns = FakeDns({"mixed.example": ["93.184.215.14", "2606:4700::1", "10.0.0.7"]})

    url = "https://mixed.example/hook"

    with pytest.raises(WebhookUrlForbiddenError, match=r"10\.0\.0\.7.*private"):
        resolve(DEFAULT, url, dns, monkeypatch)


def test_public_name_resolves_to_its_addresses_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns({"hooks.example": ["2606:4700::1", "93.184.215.14", "2606:4700::1"]})

    url = "https://hooks.example/hook"

    assert resolve(DEFAULT, url, dns, monkeypatch) == [
        ip_address("2606:4700::1"),
        ip_address("93.184.215.14"),
    ]
    assert dns.lookups == [("hooks.example", 443)]


def test_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDns({"gone.example": []})

    url = "https://gone.example/hook"

    with pytest.raises(WebhookUrlForbiddenError, match=r"gone\.example could not be resolved"):
        resolve(DEFAULT, url, dns, monkeypatch)
