"""Revocation end to end: a real agent serving its CRL over HTTP, real hosts.

One agent (started with --http-listen) and one host serve the whole module;
each test revokes certificates of its own names, so they do not interfere.
"""

import asyncio
import getpass
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from scb_agent.admin_client import AdminClient
from scb_agent.revoke_cmd import revoke_own_certificate
from scb_core.errors import ScbError
from scb_core.keys import generate_key, load_private_key
from scb_core.store import format_serial
from tests.helpers import require_openssl
from tests.lab import Agent, DnsThread, Host, free_port, run_scb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("revocation")
    dns = DnsThread({}).start()
    http = f"127.0.0.1:{free_port()}"
    agent = Agent(root / "agent", [dns.address], "--http-listen", http)
    agent.http = http
    agent.start()
    try:
        yield agent, Host(root / "host", agent), dns
    finally:
        agent.stop()
        dns.stop()


def issue(lab, name: str) -> x509.Certificate:
    """A fresh certificate for `name` on the lab's host."""
    agent, host, dns = lab
    # Not 127.0.0.1: the agent listens there, and policy refuses its own address.
    dns.records[name] = ["127.0.0.2"]
    result = host.request(name)
    assert result.returncode == 0, result.stdout + result.stderr
    return x509.load_pem_x509_certificate((host.live(name) / "cert.pem").read_bytes())


def fetch(agent, name: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(f"http://{agent.http}/{name}", timeout=10) as reply:
        return reply.read(), reply.headers["Content-Type"]


def issuing_ca(agent) -> x509.Certificate:
    return x509.load_pem_x509_certificates(
        (agent.state_dir / "ca" / "issuer.pem").read_bytes()
    )[0]


def fetch_crl(agent) -> x509.CertificateRevocationList:
    der, _ = fetch(agent, "crl.der")
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(issuing_ca(agent).public_key())
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def serial_of(cert: x509.Certificate) -> str:
    return format_serial(cert.serial_number)


def openssl_verify(tmp_path: Path, host, name: str, crl_pem: bytes):
    (tmp_path / "crl.pem").write_bytes(crl_pem)
    live = host.live(name)
    return subprocess.run(
        [require_openssl(), "verify", "-crl_check"]
        + ["-CRLfile", tmp_path / "crl.pem", "-CAfile", host.config_dir / "root.pem"]
        + ["-untrusted", live / "chain.pem", live / "cert.pem"],
        capture_output=True,
        text=True,
    )


def test_agent_serves_a_signed_crl_and_its_root_over_http(lab):
    agent, host, _ = lab

    der, der_type = fetch(agent, "crl.der")
    pem, _ = fetch(agent, "crl.pem")
    root, _ = fetch(agent, "root.pem")

    assert der_type == "application/pkix-crl"
    assert x509.load_pem_x509_crl(pem) == x509.load_der_x509_crl(der)
    assert fetch_crl(agent).issuer == issuing_ca(agent).subject
    assert root == (host.config_dir / "root.pem").read_bytes()


def test_new_leaves_name_the_agents_crl_as_their_distribution_point(lab):
    agent, _, _ = lab
    leaf = issue(lab, "points.home.arpa")

    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    [uri] = points.value[0].full_name
    assert uri.value == f"http://{agent.http}/crl.der"


def test_admin_revoke_puts_the_leaf_in_the_crl_and_openssl_rejects_it(lab, tmp_path):
    agent, host, _ = lab
    revoked = issue(lab, "gone.home.arpa")
    issue(lab, "kept.home.arpa")
    before = crl_number(fetch_crl(agent))
    # Lower case with colons, as some tools print serials.
    typed = ":".join(
        serial_of(revoked)[i : i + 2] for i in range(0, len(serial_of(revoked)), 2)
    ).lower()

    result = agent.admin("revoke", typed, "--reason", "KEYCOMPROMISE")

    assert f"revoked serial {serial_of(revoked)} (keyCompromise)" in result.stdout
    crl = fetch_crl(agent)
    assert crl_number(crl) > before
    entry = crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise

    crl_pem, _ = fetch(agent, "crl.pem")
    refused = openssl_verify(tmp_path, host, "gone.home.arpa", crl_pem)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    accepted = openssl_verify(tmp_path, host, "kept.home.arpa", crl_pem)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_certificates_listing_shows_revoked_status_and_reason(lab):
    agent, _, _ = lab
    cert = issue(lab, "listed.home.arpa")
    agent.admin("revoke", serial_of(cert), "--reason", "superseded")

    listed = agent.admin("certificates", "--search", "listed", "--json")
    table = agent.admin("certificates", "--search", "listed")

    [row] = json.loads(listed.stdout)
    assert row["serial"] == serial_of(cert)
    assert row["names"] == ["listed.home.arpa"]
    assert (row["status"], row["reason"]) == ("revoked", "superseded")
    assert row["not_after"] == cert.not_valid_after_utc.timestamp()
    assert "revoked" in table.stdout and "superseded" in table.stdout


def test_revoking_an_unknown_serial_is_a_clear_error(lab):
    agent, _, _ = lab

    result = agent.admin("revoke", "0ABCDEF123", check=False)

    assert result.returncode == 1
    assert "no certificate with serial 0ABCDEF123" in result.stderr


def test_revoking_twice_is_a_clear_error(lab):
    agent, _, _ = lab
    cert = issue(lab, "twice.home.arpa")
    agent.admin("revoke", serial_of(cert))

    result = agent.admin("revoke", serial_of(cert), check=False)

    assert result.returncode == 1
    assert f"certificate {serial_of(cert)} is already revoked" in result.stderr


def test_unknown_reason_is_refused_by_name(lab):
    agent, _, _ = lab
    cert = issue(lab, "reason.home.arpa")

    result = agent.admin("revoke", serial_of(cert), "--reason", "stolen", check=False)

    assert result.returncode == 1
    assert "'stolen' is not one of" in result.stderr
    assert agent.call("certificate", serial=serial_of(cert))["status"] == "valid"


def test_revocation_is_audited_and_published_as_an_event(lab):
    agent, _, _ = lab
    cert = issue(lab, "event.home.arpa")

    async def revoke_while_subscribed():
        async with AdminClient(agent.admin_socket) as client:
            # Once `subscribe` has answered, every later change is on the feed.
            await client.call("subscribe")
            await asyncio.to_thread(agent.admin, "revoke", serial_of(cert))
            while True:
                event = json.loads(await client._reader.readline())
                if event["event"] == "revoked":
                    return event

    event = asyncio.run(asyncio.wait_for(revoke_while_subscribed(), 30))

    assert event["serial"] == serial_of(cert)
    assert event["names"] == ["event.home.arpa"]
    [latest] = agent.call("audit", search=serial_of(cert), limit=1)
    assert (latest["event"], latest["actor"]) == ("revoked", getpass.getuser())


def test_host_revokes_its_own_certificate_by_name(lab, tmp_path):
    agent, host, _ = lab
    cert = issue(lab, "self.home.arpa")

    result = run_scb(host.env, "revoke", "self.home.arpa", "--reason", "superseded")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"revoked serial {serial_of(cert)} (superseded)" in result.stdout
    row = agent.call("certificate", serial=serial_of(cert))
    assert (row["status"], row["reason"]) == ("revoked", "superseded")
    assert fetch_crl(agent).get_revoked_certificate_by_serial_number(cert.serial_number)


def test_host_revokes_by_certificate_path(lab):
    agent, host, _ = lab
    cert = issue(lab, "path.home.arpa")
    live = host.live("path.home.arpa")

    result = run_scb(host.env, "revoke", str(live / "cert.pem"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert agent.call("certificate", serial=serial_of(cert))["status"] == "revoked"


def test_revoke_signed_with_another_key_is_denied(lab):
    agent, host, _ = lab
    cert = issue(lab, "victim.home.arpa")
    root_pem = (host.config_dir / "root.pem").read_text()
    server = ("127.0.0.1", agent.port)

    with pytest.raises(ScbError) as caught:
        asyncio.run(
            revoke_own_certificate(
                server,
                root_pem,
                serial_of(cert),
                "keyCompromise",
                generate_key("ec-p256"),
            )
        )

    assert caught.value.code == "denied"
    assert agent.call("certificate", serial=serial_of(cert))["status"] == "valid"
    [entry] = agent.call("audit", search=serial_of(cert), limit=1)
    assert (entry["event"], entry["actor"]) == ("refused", "host")


def test_host_may_not_declare_its_ca_compromised(lab):
    agent, host, _ = lab
    cert = issue(lab, "claims.home.arpa")
    key = load_private_key((host.live("claims.home.arpa") / "privkey.pem").read_bytes())
    root_pem = (host.config_dir / "root.pem").read_text()
    server = ("127.0.0.1", agent.port)

    with pytest.raises(ScbError) as caught:
        asyncio.run(
            revoke_own_certificate(
                server, root_pem, serial_of(cert), "cACompromise", key
            )
        )

    assert caught.value.code == "bad_request"
    assert "cACompromise is for the CA's operator" in caught.value.message


def test_cli_refuses_a_key_that_is_not_the_certificates(lab, tmp_path):
    _, host, _ = lab
    issue(lab, "mismatch.home.arpa")
    other = tmp_path / "other.pem"
    other.write_bytes((host.live("points.home.arpa") / "privkey.pem").read_bytes())
    cert = host.live("mismatch.home.arpa") / "cert.pem"

    result = run_scb(host.env, "revoke", str(cert), "--key", str(other))

    assert result.returncode == 2
    assert f"{other} is not the key of {cert}" in result.stderr


def test_cli_names_an_unknown_lineage(lab):
    _, host, _ = lab

    result = run_scb(host.env, "revoke", "nothing.home.arpa")

    assert result.returncode == 2
    assert "'nothing.home.arpa' is neither a certificate file nor a lineage" in (
        result.stderr
    )
