"""Resolution and CAA checks against real DNS servers on loopback.

Most tests use the built-in DnsResponder; the last group repeats the core
cases through Debian's dnsmasq so the code is not only checked against our own
reading of DNS.
"""

import asyncio
import socket
import struct
import time
from ipaddress import ip_address

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from scb_agent.dns_responder import DnsResponder
from scb_core.dns import check_caa, parse_resolver, resolve_addresses
from scb_core.errors import ScbError

from .dnsmasq import Dnsmasq, require_dnsmasq

RECORDS = {
    "v4.home.arpa": ["10.0.0.4"],
    "v6.home.arpa": ["fd00::6"],
    "both.home.arpa": ["10.0.0.5", "10.0.0.6", "fd00::5"],
}


@pytest.fixture
async def responder():
    async with DnsResponder(RECORDS) as server:
        yield server


def ips(*texts: str) -> frozenset:
    return frozenset(map(ip_address, texts))


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def assert_fails(code: str, coroutine) -> str:
    with pytest.raises(ScbError) as caught:
        await coroutine
    assert caught.value.code == code, caught.value
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        ("10.0.0.53:5353", ("10.0.0.53", 5353)),
        ("[fd00::53]:5353", ("fd00::53", 5353)),
        ("[fd00::53]", ("fd00::53", 53)),
        ("fd00::53", ("fd00::53", 53)),
        (" 127.0.0.1 ", ("127.0.0.1", 53)),
    ],
)
def test_parse_resolver_accepts_ip_with_optional_port(text, expected):
    assert parse_resolver(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dns.home.arpa",
        "10.0.0.53:",
        "10.0.0.53:0",
        "10.0.0.53:65536",
        "10.0.0.53:5_3",
        "[10.0.0.53]:53",
        "[fd00::53",
        "[fd00::53]53",
    ],
)
def test_parse_resolver_rejects_bad_value_naming_it(text):
    with pytest.raises(ValueError, match="resolver"):
        parse_resolver(text)


async def test_resolves_a_record(responder):
    found = await resolve_addresses("v4.home.arpa", [responder.address])
    assert found == ips("10.0.0.4")


async def test_resolves_aaaa_record(responder):
    found = await resolve_addresses("v6.home.arpa", [responder.address])
    assert found == ips("fd00::6")


async def test_resolves_both_families_into_one_set(responder):
    found = await resolve_addresses("Both.Home.Arpa.", [responder.address])
    assert found == ips("10.0.0.5", "10.0.0.6", "fd00::5")


async def test_follows_cname_chain(responder):
    responder.cnames["www.home.arpa"] = "alias.home.arpa"
    responder.cnames["alias.home.arpa"] = "both.home.arpa"
    found = await resolve_addresses("www.home.arpa", [responder.address])
    assert found == ips("10.0.0.5", "10.0.0.6", "fd00::5")


async def test_sees_records_changed_while_running(responder):
    responder.records["v4.home.arpa"] = ["10.9.9.9"]
    found = await resolve_addresses("v4.home.arpa", [responder.address])
    assert found == ips("10.9.9.9")


async def test_large_answer_is_fetched_over_tcp_after_truncation(responder):
    many = [f"10.0.1.{i}" for i in range(1, 101)]
    responder.records["many.home.arpa"] = many
    found = await resolve_addresses("many.home.arpa", [responder.address])
    assert found == ips(*many)


async def test_unknown_name_fails_as_nxdomain(responder):
    host, port = responder.address
    message = await assert_fails(
        "dns_failed", resolve_addresses("svc.home.arpa", [responder.address])
    )
    assert message == f"svc.home.arpa does not exist (NXDOMAIN at {host}:{port})"


async def test_name_without_addresses_fails(responder):
    responder.caa["mail.home.arpa"] = [(0, "issue", "scb")]
    message = await assert_fails(
        "dns_failed", resolve_addresses("mail.home.arpa", [responder.address])
    )
    assert "mail.home.arpa has no A or AAAA records" in message


async def test_refusing_resolver_fails():
    class Refusing(DnsResponder):
        def _fill(self, response, question):
            response.set_rcode(dns.rcode.REFUSED)

    async with Refusing(RECORDS) as server:
        message = await assert_fails(
            "dns_failed", resolve_addresses("v4.home.arpa", [server.address])
        )
    assert "answered REFUSED" in message


async def test_closed_port_fails_within_the_timeout():
    started = time.monotonic()
    message = await assert_fails(
        "dns_failed",
        resolve_addresses(
            "v4.home.arpa", [("127.0.0.1", closed_udp_port())], timeout=0.3
        ),
    )
    assert time.monotonic() - started < 2
    assert "v4.home.arpa" in message


async def test_agreeing_resolvers_give_the_common_set(responder):
    async with DnsResponder(RECORDS) as other:
        found = await resolve_addresses(
            "both.home.arpa", [responder.address, other.address]
        )
    assert found == ips("10.0.0.5", "10.0.0.6", "fd00::5")


async def test_disagreeing_resolvers_fail_listing_each_set(responder):
    async with DnsResponder({"v4.home.arpa": ["10.6.6.6"]}) as other:
        message = await assert_fails(
            "dns_disagreement",
            resolve_addresses("v4.home.arpa", [responder.address, other.address]),
        )
    assert f"127.0.0.1:{responder.port} says 10.0.0.4" in message
    assert f"127.0.0.1:{other.port} says 10.6.6.6" in message


async def test_one_failing_resolver_fails_the_lookup(responder):
    async with DnsResponder({}) as empty:
        await assert_fails(
            "dns_failed",
            resolve_addresses("v4.home.arpa", [responder.address, empty.address]),
        )


async def test_require_dnssec_refuses_answer_without_ad(responder):
    message = await assert_fails(
        "dns_failed",
        resolve_addresses("v4.home.arpa", [responder.address], require_dnssec=True),
    )
    assert "not DNSSEC-authenticated" in message


async def test_require_dnssec_accepts_answer_with_ad():
    async with DnsResponder(RECORDS, authenticated_data=True) as server:
        found = await resolve_addresses(
            "v4.home.arpa", [server.address], require_dnssec=True
        )
    assert found == ips("10.0.0.4")


class Forger(asyncio.DatagramProtocol):
    """Answers each query twice: first forged (`forge` spoils it), then truly."""

    def __init__(self, forge):
        self.forge = forge

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        forged = dns.message.make_response(query)
        forged.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "10.6.6.6")
        )
        self.forge(forged)
        self.transport.sendto(forged.to_wire(), addr)
        true = dns.message.make_response(query)
        if query.question[0].rdtype == dns.rdatatype.A:
            true.answer.append(
                dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "10.0.0.4")
            )
        self.transport.sendto(true.to_wire(), addr)


def other_id(message):
    message.id ^= 1


def other_question(message):
    message.question = [
        dns.rrset.RRset(dns.name.from_text("evil.home.arpa"), 1, dns.rdatatype.A)
    ]


@pytest.mark.parametrize("forge", [other_id, other_question])
async def test_reply_not_answering_our_query_is_ignored(forge):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Forger(forge), local_addr=("127.0.0.1", 0)
    )
    try:
        found = await resolve_addresses(
            "v4.home.arpa", [transport.get_extra_info("sockname")], timeout=2
        )
    finally:
        transport.close()
    assert found == ips("10.0.0.4")


async def test_cname_loop_fails_instead_of_spinning(responder):
    responder.cnames["loop.home.arpa"] = "pool.home.arpa"
    responder.cnames["pool.home.arpa"] = "loop.home.arpa"
    await assert_fails(
        "dns_failed", resolve_addresses("loop.home.arpa", [responder.address])
    )


async def test_garbage_does_not_stop_the_responder(responder):
    host, port = responder.address
    response = dns.message.make_response(dns.message.make_query("v4.home.arpa", "A"))
    garbage = [b"", b"\x00", b"\xff" * 12, b"A" * 600, response.to_wire()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in garbage:
            sock.sendto(datagram, (host, port))
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(struct.pack("!H", 5) + b"hello")
    assert await reader.read() == b""  # garbage over TCP just closes
    writer.close()

    found = await resolve_addresses("v4.home.arpa", [responder.address])
    assert found == ips("10.0.0.4")


async def test_caa_absent_allows_issuance(responder):
    await check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"])


async def test_caa_naming_us_allows_issuance(responder):
    responder.caa["v4.home.arpa"] = [
        (0, "issue", "other.example"),
        (0, "issue", "SCB.home.arpa; account=7"),
    ]
    await check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"])


async def test_caa_naming_others_denies_naming_name_and_values(responder):
    responder.caa["v4.home.arpa"] = [(0, "issue", "other.example")]
    message = await assert_fails(
        "policy_denied",
        check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"]),
    )
    assert "v4.home.arpa" in message
    assert '0 issue "other.example"' in message


async def test_caa_on_parent_applies_to_child(responder):
    responder.caa["home.arpa"] = [(0, "issue", ";")]
    message = await assert_fails(
        "policy_denied",
        check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"]),
    )
    assert "at home.arpa" in message


async def test_closest_caa_wins_over_parent(responder):
    responder.caa["home.arpa"] = [(0, "issue", "other.example")]
    responder.caa["v4.home.arpa"] = [(0, "issue", "scb.home.arpa")]
    await check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"])


async def test_caa_without_issue_property_allows_issuance(responder):
    responder.caa["v4.home.arpa"] = [(0, "iodef", "mailto:ops@home.arpa")]
    await check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"])


async def test_caa_critical_unknown_tag_denies(responder):
    responder.caa["v4.home.arpa"] = [
        (0, "issue", "scb.home.arpa"),
        (128, "tbs", "unknown"),
    ]
    await assert_fails(
        "policy_denied",
        check_caa("v4.home.arpa", [responder.address], ["scb.home.arpa"]),
    )


async def test_caa_lookup_failure_fails_closed():
    await assert_fails(
        "dns_failed",
        check_caa(
            "v4.home.arpa", [("127.0.0.1", closed_udp_port())], ["scb"], timeout=0.3
        ),
    )


@pytest.fixture
def dnsmasq(tmp_path):
    require_dnsmasq()
    with Dnsmasq(RECORDS, tmp_path) as server:
        yield server


@pytest.mark.needs_dnsmasq
async def test_dnsmasq_resolves_both_families(dnsmasq):
    found = await resolve_addresses("both.home.arpa", [dnsmasq.address])
    assert found == ips("10.0.0.5", "10.0.0.6", "fd00::5")


@pytest.mark.needs_dnsmasq
async def test_dnsmasq_single_family_names(dnsmasq):
    assert await resolve_addresses("v4.home.arpa", [dnsmasq.address]) == ips("10.0.0.4")
    assert await resolve_addresses("v6.home.arpa", [dnsmasq.address]) == ips("fd00::6")


@pytest.mark.needs_dnsmasq
async def test_dnsmasq_unknown_name_fails_as_nxdomain(dnsmasq):
    message = await assert_fails(
        "dns_failed", resolve_addresses("svc.home.arpa", [dnsmasq.address])
    )
    assert "svc.home.arpa does not exist (NXDOMAIN at 127.0.0.1:" in message


@pytest.mark.needs_dnsmasq
async def test_dnsmasq_and_responder_agree(dnsmasq, responder):
    found = await resolve_addresses(
        "both.home.arpa", [dnsmasq.address, responder.address]
    )
    assert found == ips("10.0.0.5", "10.0.0.6", "fd00::5")


@pytest.mark.needs_dnsmasq
async def test_dnsmasq_without_caa_allows_issuance(dnsmasq):
    await check_caa("v4.home.arpa", [dnsmasq.address], ["scb.home.arpa"])
