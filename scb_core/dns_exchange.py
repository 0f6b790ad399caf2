"""One DNS query to one resolver: UDP first, TCP when the answer is truncated.

dnspython's `udp_with_fallback` rebuilds and re-renders the query, wraps the
socket in its backend's objects and checks every reply's source by hand; for
an agent asking two questions per issuance that was a fifth of its Python
time. Here the rendered query is kept per question (only its ID changes),
and the socket is a connected UDP endpoint, so the kernel itself drops
datagrams from anyone but the resolver.

What counts as the answer is what dnspython accepts with `ignore_errors`:
the first reply that parses, carries our ID with QR set, and asks our
question. Malformed and mismatched replies are ignored, not trusted; so are
ICMP errors, as they were on dnspython's unconnected socket, and the
caller's deadline ends the wait.
"""

import asyncio
import secrets
import socket

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype

Resolver = tuple[str, int]

MAX_QUESTIONS = 1024  # rendered queries kept; a full cache starts over

# dnspython's exception: these may answer with an empty question section.
_EMPTY_QUESTION_OK = frozenset(
    {dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED}
)

_rendered: dict[tuple, tuple[dns.message.Message, bytes]] = {}


def new_query(
    qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, dnssec: bool
) -> dns.message.Message:
    query = dns.message.make_query(qname, rdtype, want_dnssec=dnssec)
    if dnssec:
        # RFC 6840 5.7: the AD bit in a query asks for AD in the answer.
        query.flags |= dns.flags.AD
    return query


async def exchange(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    resolver: Resolver,
    dnssec: bool,
) -> dns.message.Message:
    """The resolver's answer; the caller bounds the wait with a timeout."""
    question, wire = _render(qname, rdtype, dnssec)
    query_id = secrets.randbits(16)
    ip, port = resolver

    loop = asyncio.get_running_loop()
    transport, reply = await loop.create_datagram_endpoint(
        lambda: _Reply(question, query_id, loop.create_future()),
        sock=_connected_socket(ip, port),
    )
    try:
        transport.sendto(query_id.to_bytes(2, "big") + wire[2:])
        response = await reply.answer
    finally:
        transport.close()

    if response is None:  # truncated: ask again over TCP, as dnspython does
        query = new_query(qname, rdtype, dnssec)
        response = await dns.asyncquery.tcp(query, ip, port=port)
    return response


def _connected_socket(ip: str, port: int) -> socket.socket:
    """A fresh UDP socket (a fresh source port) bound to talk to ip:port only.

    Made here rather than from `remote_addr`, which sends the address through
    getaddrinfo on an executor thread for every query.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((ip, port))  # UDP: no packet sent, nothing to wait for
    except BaseException:
        sock.close()
        raise
    return sock


def _render(qname, rdtype, dnssec) -> tuple[dns.message.Message, bytes]:
    key = (qname, rdtype, dnssec)
    rendered = _rendered.get(key)
    if rendered is None:
        if len(_rendered) >= MAX_QUESTIONS:
            _rendered.clear()
        query = new_query(qname, rdtype, dnssec)
        rendered = _rendered[key] = (query, query.to_wire())
    return rendered


class _Reply(asyncio.DatagramProtocol):
    """Waits for the first datagram that answers our query."""

    def __init__(self, question, query_id: int, answer: asyncio.Future):
        self.question = question
        self.query_id = query_id
        self.answer = answer  # the response, or None when truncated

    def datagram_received(self, data: bytes, addr) -> None:
        if self.answer.done():
            return
        try:
            response = dns.message.from_wire(data, raise_on_truncation=True)
        except dns.message.Truncated as exc:
            if self._answers(exc.message()):
                self.answer.set_result(None)
            return
        except Exception:  # malformed: someone else's noise, not an answer
            return
        if self._answers(response):
            self.answer.set_result(response)

    def error_received(self, exc: OSError) -> None:
        pass  # an ICMP error is no answer; the caller's deadline still runs

    def _answers(self, response: dns.message.Message | None) -> bool:
        if response is None or not response.flags & dns.flags.QR:
            return False
        if response.id != self.query_id:
            return False
        if (response.flags >> 11) & 0xF != dns.opcode.QUERY:  # no enum built
            return False
        if not response.question and response.rcode() in _EMPTY_QUESTION_OK:
            return True
        return response.question == self.question.question
