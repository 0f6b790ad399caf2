"""The point of it all: Debian's nginx serves what `scb-agent request` wrote.

nginx runs in the foreground on a loopback port, with its config, pid, logs
and temp dirs in tmp_path, reading the live/ files exactly as an operator
would point it at them. The page is fetched with Python's ssl trusting only
the SCB root and checking the host name.
"""

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from scb_agent.demo_lab import accepts
from tests.helpers import require_nginx
from tests.lab import Agent, DnsThread, Host, free_port

pytestmark = pytest.mark.needs_nginx

NAME = "web.home.arpa"
PAGE = "served by nginx with an SCB certificate"

CONFIG = """\
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
events {{ worker_connections 16; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {name};
        ssl_certificate {live}/fullchain.pem;
        ssl_certificate_key {live}/privkey.pem;
        location / {{
            default_type text/plain;
            return 200 "{page}\\n";
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, tmp: Path, live: Path):
        self.tmp = tmp
        self.port = free_port()
        # As root the workers would become nobody, who cannot enter tmp_path.
        user = "user root;" if os.geteuid() == 0 else ""
        self.config = tmp / "nginx.conf"
        self.config.write_text(
            CONFIG.format(
                user=user, tmp=tmp, port=self.port, name=NAME, live=live, page=PAGE
            )
        )
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Nginx":
        command = [require_nginx(), "-p", str(self.tmp), "-c", str(self.config)]
        command += ["-e", str(self.tmp / "error.log"), "-g", "daemon off;"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while not accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {self.error_log()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def error_log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text() if path.exists() else "(no error log)"


def fetch(port: int, context: ssl.SSLContext, name: str) -> str:
    """GET / from 127.0.0.1:port, verifying the certificate for `name`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
            tls.sendall(request.encode())
            reply = b""
            while chunk := tls.recv(4096):
                reply += chunk
    return reply.decode()


def only_the_root(root_pem: Path) -> ssl.SSLContext:
    # With a cafile, create_default_context loads no system CAs at all.
    context = ssl.create_default_context(cafile=str(root_pem))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


def test_nginx_serves_the_issued_certificate_to_a_client_trusting_only_the_root(
    tmp_path,
):
    require_nginx()
    dns = DnsThread({NAME: ["127.0.0.2"]}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.start()
    try:
        host = Host(tmp_path / "host", agent)
        # As the "done when" types it, server named on the command line.
        issued = host.request(NAME, "--server", agent.address)
        assert issued.returncode == 0, issued.stdout + issued.stderr
        (tmp_path / "nginx").mkdir()

        with Nginx(tmp_path / "nginx", host.live(NAME)) as nginx:
            context = only_the_root(host.config_dir / "root.pem")
            reply = fetch(nginx.port, context, NAME)

            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname"):
                fetch(nginx.port, context, "other.home.arpa")
            with pytest.raises(ssl.SSLCertVerificationError):
                fetch(nginx.port, ssl.create_default_context(), NAME)
    finally:
        agent.stop()
        dns.stop()

    status, _, body = reply.partition("\r\n")
    assert status == "HTTP/1.1 200 OK", reply
    assert body.endswith(PAGE + "\n")
