"""A tiny authoritative DNS server for the demo and for tests.

`scb-agent demo` and the test suite need names that resolve to loopback
addresses without touching the host's DNS setup or needing dnsmasq. This
server answers A, AAAA and CAA queries from in-memory tables (plus CNAMEs,
so alias chains can be exercised) over UDP and TCP on one port.

The tables are plain dicts read on every query, so a test can change them
while the server runs. Answers carry TTL 0 for the same reason: nothing should
cache them. Anything that is not a well-formed query is dropped or refused;
no datagram can stop the server.
"""

import asyncio
import ipaddress
import logging
import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import dns.rdtypes.ANY.CNAME
import dns.rrset

logger = logging.getLogger(__name__)

_TTL = 0
_MAX_CNAME_CHAIN = 8
_TCP_IDLE_SECONDS = 10.0
_BIND_ATTEMPTS = 20


class DnsResponder:
    """Answer for the names in `records`, `cnames` and `caa`, NXDOMAIN else.

    records: name -> IP strings (both families, split by query type)
    cnames: name -> target name
    caa: name -> [(flags, tag, value)]
    Names are lower-case without the trailing dot.
    """

    def __init__(
        self,
        records: dict[str, list[str]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticated_data: bool = False,
    ):
        self.records: dict[str, list[str]] = dict(records or {})
        self.cnames: dict[str, str] = {}
        self.caa: dict[str, list[tuple[int, str, str]]] = {}
        self.host = host
        self.port = port
        self.authenticated_data = authenticated_data
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def __aenter__(self) -> "DnsResponder":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on UDP and TCP; port 0 picks one free for both."""
        attempts = 1 if self.port else _BIND_ATTEMPTS
        for attempt in range(attempts):
            try:
                await self._bind()
                break
            except OSError:
                # The free UDP port may be taken for TCP; try another one.
                await self.stop()
                if attempt + 1 == attempts:
                    raise
        logger.info("DNS responder listening on %s port %s", self.host, self.port)

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
        )
        port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
        self.port = port

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._connections):
                writer.close()
            await self._tcp.wait_closed()
            self._tcp = None

    def answer(self, wire: bytes, *, udp: bool = False) -> bytes | None:
        """Return the wire reply to one query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except Exception as exc:  # garbage of any shape is simply dropped
            logger.debug("dropping unparsable DNS message: %s", exc)
            return None
        if query.flags & dns.flags.QR:
            return None  # a response, not a query: answering it could loop

        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.authenticated_data:
            response.flags |= dns.flags.AD
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        else:
            try:
                self._fill(response, query.question[0])
            except (ValueError, dns.exception.DNSException):
                # A bad table entry is the caller's bug: log it and answer
                # SERVFAIL at once rather than leave the client to time out.
                logger.exception("DNS responder cannot answer from its tables")
                response.answer.clear()
                response.set_rcode(dns.rcode.SERVFAIL)

        # Over UDP, stay within what the client can take (RFC 1035, RFC 6891)
        # and set TC so it retries over TCP.
        max_size = 65535
        if udp:
            max_size = max(512, query.payload) if query.edns >= 0 else 512
        return response.to_wire(max_size=max_size, prefer_truncation=True)

    def _fill(self, response: dns.message.Message, question: dns.rrset.RRset) -> None:
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return
        name, rdtype = question.name, question.rdtype
        for _ in range(_MAX_CNAME_CHAIN):
            target = self.cnames.get(_key(name))
            if target is None or rdtype == dns.rdatatype.CNAME:
                break
            alias = dns.rdtypes.ANY.CNAME.CNAME(
                dns.rdataclass.IN, dns.rdatatype.CNAME, dns.name.from_text(target)
            )
            response.answer.append(dns.rrset.from_rdata(name, _TTL, alias))
            name = alias.target

        key = _key(name)
        if not any(key in table for table in (self.records, self.cnames, self.caa)):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        rdatas = self._rdatas(key, rdtype)
        if rdatas:
            response.answer.append(dns.rrset.from_rdata_list(name, _TTL, rdatas))

    def _rdatas(self, key: str, rdtype: int) -> list[dns.rdata.Rdata]:
        if rdtype == dns.rdatatype.CAA:
            return [
                dns.rdtypes.ANY.CAA.CAA(
                    dns.rdataclass.IN, rdtype, flags, tag.encode(), value.encode()
                )
                for flags, tag, value in self.caa.get(key, [])
            ]
        if rdtype == dns.rdatatype.CNAME and key in self.cnames:
            target = dns.name.from_text(self.cnames[key])
            return [dns.rdtypes.ANY.CNAME.CNAME(dns.rdataclass.IN, rdtype, target)]
        version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(rdtype)
        return [
            dns.rdata.from_text(dns.rdataclass.IN, rdtype, ip)
            for ip in self.records.get(key, [])
            if ipaddress.ip_address(ip).version == version
        ]

    async def _serve_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections.add(writer)
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE_SECONDS):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(length)
                reply = self.answer(wire)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (OSError, EOFError, TimeoutError):
            pass  # the client went away or idled; nothing to report
        finally:
            self._connections.discard(writer)
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder):
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = self.responder.answer(data, udp=True)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies; the next query is unaffected.
        logger.debug("DNS responder UDP error: %s", exc)


def _key(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
