"""The public dir over plain HTTP: crl.der, crl.pem and root.pem.

The standard library's ThreadingHTTPServer and SimpleHTTPRequestHandler do
all the HTTP (GET and HEAD, nothing else); this module only picks their
settings. It runs in its own thread because http.server blocks. Nothing
served is secret: a CRL and a root are public by design and carry their own
signatures, which is why relying parties fetch CRLs over plain HTTP.
"""

import logging
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from scb_core.config import parse_host_port
from scb_core.errors import ConfigError

logger = logging.getLogger(__name__)


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".der": "application/pkix-crl",  # RFC 2585's type for a DER CRL
        ".pem": "application/x-pem-file",
    }
    # A client that stalls mid-request gives its thread back after this long.
    timeout = 10

    def list_directory(self, path):
        # Only the three files are published; there is nothing to browse.
        self.send_error(404, "no directory listing")
        return None

    def log_message(self, format: str, *args) -> None:
        logger.debug("http %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never keeps the agent from exiting


class _Server6(_Server):
    address_family = socket.AF_INET6


class PublicHttpServer:
    """The HTTP server on its own thread, from start() until stop()."""

    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="http", daemon=True
        )

    @classmethod
    def start(cls, public_dir: Path, listen: str) -> "PublicHttpServer":
        host, port = parse_host_port(listen)
        server_class = _Server6 if ":" in host else _Server
        handler = partial(_Handler, directory=str(public_dir))
        try:
            server = server_class((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve HTTP on {listen} (http_listen): {exc}"
            ) from exc

        public = cls(server)
        public._thread.start()
        logger.info("serving %s over HTTP on %s", public_dir, listen)
        return public

    def stop(self) -> None:
        """Blocks until the serving thread has returned."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
