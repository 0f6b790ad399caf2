"""Address and CAA look-ups against the resolvers named in the policy.

The certifier must see what the operator's resolvers say, not what the host's
/etc/resolv.conf says, and lab resolvers often listen on ports other than 53.
So every query goes straight to a configured resolver (dns_exchange.py, over
dnspython's wire format), and every answer is judged here: its rcode, the AD flag
when DNSSEC is required, and whether all resolvers agree.

Each query gets one deadline covering the UDP attempt and any TCP retry after
truncation. Replies from unexpected sources and malformed replies are ignored
rather than trusted, so only an answer from the resolver itself counts.
"""

import asyncio
import ipaddress
import logging
import re

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from scb_core.dns_exchange import Resolver, exchange
from scb_core.errors import ScbError

logger = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DNS_PORT = 53

# RFC 8659 section 4.1: a critical property with a tag we do not process
# forbids issuance. These are the tags this CA processes (or may ignore).
_KNOWN_CAA_TAGS = frozenset({"issue", "issuewild", "iodef"})
_CAA_CRITICAL = 0x80

_PORT = re.compile(r"[0-9]{1,5}")
_BAD_RESOLVER = "resolver {!r} is not IP, IP:PORT or [IPv6]:PORT"


def parse_resolver(text: str) -> Resolver:
    """Parse "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address."""
    host, port = _split_host_port(text.strip())
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(_BAD_RESOLVER.format(text)) from None
    if port is None:
        return str(address), DNS_PORT
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"resolver {text!r} has a bad port {port!r}")
    return str(address), int(port)


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        # Brackets only make sense around an IPv6 address.
        if not bracket or ":" not in host or rest[:1] not in ("", ":"):
            raise ValueError(_BAD_RESOLVER.format(text))
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    # No colon (IPv4) or several (a bare IPv6 address): no port given.
    return text, None


def show_resolver(resolver: Resolver) -> str:
    ip, port = resolver
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def resolve_addresses(
    name: str,
    resolvers: list[Resolver],
    *,
    timeout: float = 5.0,
    require_dnssec: bool = False,
) -> frozenset[Address]:
    """Return the A and AAAA addresses every resolver agrees on for name."""
    if not resolvers:
        raise ValueError("resolve_addresses needs at least one resolver")
    qname = _dns_name(name)

    results = await asyncio.gather(
        *(_addresses_at(qname, r, timeout, require_dnssec) for r in resolvers),
        return_exceptions=True,
    )
    _raise_first_failure(results)

    if len(set(results)) > 1:
        views = "; ".join(
            f"{show_resolver(r)} says {_show_addresses(a)}"
            for r, a in zip(resolvers, results, strict=True)
        )
        raise ScbError("dns_disagreement", f"resolvers disagree on {name}: {views}")
    return results[0]


async def _addresses_at(
    qname: dns.name.Name, resolver: Resolver, timeout: float, dnssec: bool
) -> frozenset[Address]:
    results = await asyncio.gather(
        _records(qname, dns.rdatatype.A, resolver, timeout, dnssec),
        _records(qname, dns.rdatatype.AAAA, resolver, timeout, dnssec),
        return_exceptions=True,
    )
    _raise_first_failure(results)

    addresses = frozenset().union(*results)
    if not addresses:
        raise ScbError(
            "dns_failed",
            f"{_show(qname)} has no A or AAAA records (at {show_resolver(resolver)})",
        )
    return addresses


async def _records(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    resolver: Resolver,
    timeout: float,
    dnssec: bool,
) -> frozenset[Address]:
    rcode, rrset = await _ask(qname, rdtype, resolver, timeout, dnssec)
    if rcode == dns.rcode.NXDOMAIN:
        raise ScbError(
            "dns_failed",
            f"{_show(qname)} does not exist (NXDOMAIN at {show_resolver(resolver)})",
        )
    addresses = frozenset(ipaddress.ip_address(r.address) for r in rrset or ())
    if logger.isEnabledFor(logging.DEBUG):  # its arguments cost more than the call
        logger.debug(
            "%s %s at %s: %s",
            _show(qname),
            rdtype.name,
            show_resolver(resolver),
            _show_addresses(addresses),
        )
    return addresses


async def check_caa(
    name: str,
    resolvers: list[Resolver],
    identities: list[str],
    *,
    timeout: float = 5.0,
) -> None:
    """Raise policy_denied unless CAA (RFC 8659) lets one of identities issue."""
    if not resolvers:
        raise ValueError("check_caa needs at least one resolver")
    found = await _relevant_caa(_dns_name(name), resolvers[0], timeout)
    if found is None:
        logger.debug("no CAA records for %s: issuance allowed", name)
        return
    owner, rrset = found
    values = ", ".join(rdata.to_text() for rdata in rrset)
    where = f"CAA for {name} (at {_show(owner)}: {values})"

    properties = [
        (rdata.flags, rdata.tag.decode("ascii", "replace").lower(), rdata.value)
        for rdata in rrset
    ]
    for flags, tag, _ in properties:
        if flags & _CAA_CRITICAL and tag not in _KNOWN_CAA_TAGS:
            raise ScbError("policy_denied", f"{where} has critical tag {tag!r}")

    issuers = {_issuer_domain(value) for _, tag, value in properties if tag == "issue"}
    # No issue property means the RRset restricts nothing we do (RFC 8659 4.2).
    ours = {_issuer_domain(i.encode()) for i in identities} - {""}
    if issuers and not issuers & ours:
        allowed = ", ".join(identities) or "no identities configured"
        raise ScbError("policy_denied", f"{where} does not name this CA ({allowed})")


async def _relevant_caa(
    qname: dns.name.Name, resolver: Resolver, timeout: float
) -> tuple[dns.name.Name, dns.rrset.RRset] | None:
    """Climb towards the root; the first CAA RRset found is the relevant one."""
    candidate = qname
    while candidate != dns.name.root:
        _, rrset = await _ask(candidate, dns.rdatatype.CAA, resolver, timeout)
        if rrset:
            return candidate, rrset
        candidate = candidate.parent()
    return None


def _issuer_domain(value: bytes) -> str:
    domain = value.split(b";", 1)[0].strip()
    return domain.decode("ascii", "replace").lower().rstrip(".")


async def _ask(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    resolver: Resolver,
    timeout: float,
    dnssec: bool = False,
) -> tuple[int, dns.rrset.RRset | None]:
    """Return the rcode and the answer RRset (after CNAMEs) from one resolver.

    Only NOERROR and NXDOMAIN come back; anything else raises dns_failed.
    """
    try:
        async with asyncio.timeout(timeout):
            response = await exchange(qname, rdtype, resolver, dnssec)
        rcode = response.rcode()
        rrset = None
        if rcode == dns.rcode.NOERROR:
            rrset = _answer_after_cnames(response)
    except TimeoutError:
        raise ScbError(
            "dns_failed",
            f"no answer for {_where(qname, rdtype, resolver)} within {timeout:g} s",
        ) from None
    except (OSError, dns.exception.DNSException) as exc:
        raise ScbError(
            "dns_failed", f"query for {_where(qname, rdtype, resolver)} failed: {exc}"
        ) from exc

    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise ScbError(
            "dns_failed",
            f"{_where(qname, rdtype, resolver)} answered {dns.rcode.to_text(rcode)}",
        )
    if dnssec and not response.flags & dns.flags.AD:
        raise ScbError(
            "dns_failed",
            f"answer for {_where(qname, rdtype, resolver)} is not "
            "DNSSEC-authenticated (no AD)",
        )
    return rcode, rrset


def _answer_after_cnames(response) -> dns.rrset.RRset | None:
    """The RRset answering the question, following CNAMEs as resolvers do.

    What dnspython's resolve_chaining().answer gives, without the negative
    TTL it then works out by climbing the authority section name by name: an
    AAAA question for a v4-only host paid that on every issuance, for a TTL
    nobody reads.
    """
    if len(response.question) != 1:
        raise dns.exception.FormError("the answer does not hold one question")
    question = response.question[0]
    rrsets = {}
    for rrset in response.answer:
        key = (rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
        rrsets.setdefault(key, rrset)

    name, rdclass, none = question.name, question.rdclass, dns.rdatatype.NONE
    for _ in range(dns.message.MAX_CHAIN):
        answer = rrsets.get((name, rdclass, question.rdtype, none))
        if answer is not None:
            return answer
        cname = rrsets.get((name, rdclass, dns.rdatatype.CNAME, none))
        if cname is None:
            return None
        name = cname[0].target
    raise dns.message.ChainTooLong()


def _raise_first_failure(results: list) -> None:
    # Failures are raised in resolver order so the same fault always reads
    # the same way, whichever query happened to finish first.
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _dns_name(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"{name!r} is not a DNS name: {exc}") from None


def _where(qname: dns.name.Name, rdtype, resolver: Resolver) -> str:
    """The query, for error messages only: it is too dear to build for each."""
    return f"{_show(qname)} {rdtype.name} at {show_resolver(resolver)}"


def _show(qname: dns.name.Name) -> str:
    return qname.to_text(omit_final_dot=True)


def _show_addresses(addresses: frozenset[Address]) -> str:
    return ", ".join(sorted(map(str, addresses))) or "nothing"
