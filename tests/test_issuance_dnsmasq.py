"""Issuance validated through Debian's dnsmasq instead of our own responder.

The same agent and host as tests/test_issuance_e2e.py, but every name is
looked up in a DNS server somebody else wrote.
"""

import subprocess

import pytest

from tests.dnsmasq import Dnsmasq, require_dnsmasq
from tests.helpers import require_openssl
from tests.lab import Agent, Host

pytestmark = pytest.mark.needs_dnsmasq

RECORDS = {"svc.home.arpa": ["127.0.0.2"], "multi.home.arpa": ["127.0.0.3"]}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_dnsmasq()
    root = tmp_path_factory.mktemp("dnsmasq")
    with Dnsmasq(RECORDS, root) as dnsmasq:
        host_name, port = dnsmasq.address
        agent = Agent(root / "agent", [f"{host_name}:{port}"])
        agent.start()
        try:
            yield agent, Host(root / "host", agent)
        finally:
            agent.stop()


def test_names_in_dnsmasq_are_issued_and_openssl_accepts_them(lab):
    agent, host = lab

    result = host.request("svc.home.arpa", "multi.home.arpa")

    assert result.returncode == 0, result.stdout + result.stderr
    live = host.live("svc.home.arpa")
    verified = subprocess.run(
        [require_openssl(), "verify", "-x509_strict", "-purpose", "sslserver"]
        + ["-CAfile", str(host.config_dir / "root.pem")]
        + ["-untrusted", str(live / "chain.pem"), str(live / "cert.pem")],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    [row] = agent.call("requests", limit=1)
    assert (row["outcome"], row["names"]) == (
        "issued",
        ["svc.home.arpa", "multi.home.arpa"],
    )


def test_name_dnsmasq_does_not_know_fails_dns_and_the_agent_carries_on(lab):
    agent, host = lab

    result = host.request("unknown.home.arpa")

    assert result.returncode == 1
    assert "error dns_failed" in result.stderr
    assert "unknown.home.arpa" in result.stderr
    [row] = agent.call("requests", limit=1)
    assert (row["outcome"], row["error_code"]) == ("failed", "dns_failed")
    assert row["names"] == ["unknown.home.arpa"]
    again = host.request("svc.home.arpa")
    assert again.returncode == 0, again.stdout + again.stderr
