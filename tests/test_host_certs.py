"""`scb-agent certificates` status rules, and when renew counts a lineage due.

Lineages are written with a test CA; CRLs are served by a real HTTP server on
loopback, so the fetch, the signature check and the serial lookup are real.
"""

import datetime as dt
import http.server
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scb_agent.crl_check import CrlCache
from scb_agent.host_certs import lineage_status
from scb_agent.lineage import Lineage
from scb_agent.renew import due_reason
from scb_core.ca import Authority, LeafSpec, issue_leaf
from scb_core.crl import Revocation, sign_crl
from scb_core.keys import generate_key, private_key_pem
from scb_core.store import format_serial
from tests.helpers import make_authority

NAME = "web.home.arpa"
DAY = dt.timedelta(days=1)


class CrlServer:
    """Serves `crls[path]` (bytes) over HTTP on 127.0.0.1; 404 for the rest."""

    def __init__(self):
        self.crls: dict[str, bytes] = {}
        crls = self.crls

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = crls.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def crl_server():
    server = CrlServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def authority() -> Authority:
    return make_authority()[0]


def lineage_with(tmp_path, authority, crl_url=None, days=90) -> Lineage:
    key = generate_key("ec-p256")
    spec = LeafSpec([NAME, "www.home.arpa"], key.public_key(), x509.Name([]), days)
    leaf = issue_leaf(authority, spec, crl_url)
    lineage = Lineage(tmp_path, NAME)
    lineage.write_version(private_key_pem(key), [leaf, *authority.chain])
    return lineage


def crl_listing(authority: Authority, *serials: int, signer=None) -> bytes:
    now = dt.datetime.now(dt.UTC)
    revocations = [
        Revocation(format_serial(s), "keyCompromise", now.timestamp()) for s in serials
    ]
    if signer is not None:  # same issuer name, another key: a forgery
        authority = Authority(authority.root, signer, authority.chain)
    crl = sign_crl(authority, revocations, 1, now, now + 7 * DAY)
    return crl.public_bytes(Encoding.DER)


def status_at(lineage: Lineage, authority: Authority, now: dt.datetime):
    return lineage_status(lineage, now, CrlCache(authority.root))


def test_a_fresh_lineage_is_valid_with_its_names_serial_and_days(tmp_path, authority):
    lineage = lineage_with(tmp_path, authority)
    cert = lineage.live_certificate()
    now = dt.datetime.now(dt.UTC)

    status = status_at(lineage, authority, now)

    assert status.status == "valid"
    assert status.revocation == "no crl"
    assert status.names == [NAME, "www.home.arpa"]
    assert status.serial == format_serial(cert.serial_number)
    assert status.days_left == 89
    assert status.not_after.endswith("Z")
    assert status.live == str(lineage.live_dir)


def test_a_lineage_is_due_in_its_last_third_and_then_expired(tmp_path, authority):
    lineage = lineage_with(tmp_path, authority)
    cert = lineage.live_certificate()
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc

    assert status_at(lineage, authority, start + 59 * DAY).status == "valid"
    assert status_at(lineage, authority, start + 61 * DAY).status == "due"
    assert status_at(lineage, authority, end).status == "expired"
    assert status_at(lineage, authority, end + DAY).days_left == -1


def test_renew_counts_a_certificate_due_by_thirds_or_by_days(tmp_path, authority):
    cert = lineage_with(tmp_path, authority).live_certificate()
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc

    assert due_reason(cert, start + DAY, days=0) == ""
    assert due_reason(cert, start + 61 * DAY, 0) == (
        "less than a third of its lifetime left"
    )
    assert due_reason(cert, start + DAY, days=90) == "expires within 90 days"
    assert due_reason(cert, end, days=0) == "expired"


def test_a_serial_on_the_issuers_crl_is_revoked(tmp_path, authority, crl_server):
    url = crl_server.url("/revoked.crl")
    lineage = lineage_with(tmp_path, authority, url)
    serial = lineage.live_certificate().serial_number
    crl_server.crls["/revoked.crl"] = crl_listing(authority, 12345, serial)

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert (status.status, status.revocation) == ("revoked", "revoked")


def test_a_serial_not_on_the_crl_is_good(tmp_path, authority, crl_server):
    url = crl_server.url("/good.crl")
    lineage = lineage_with(tmp_path, authority, url)
    crl_server.crls["/good.crl"] = crl_listing(authority, 12345)

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert (status.status, status.revocation) == ("valid", "good")


def test_a_crl_signed_by_another_key_is_not_believed(tmp_path, authority, crl_server):
    url = crl_server.url("/forged.crl")
    lineage = lineage_with(tmp_path, authority, url)
    serial = lineage.live_certificate().serial_number
    forger = generate_key("ec-p256")
    crl_server.crls["/forged.crl"] = crl_listing(authority, serial, signer=forger)

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert (status.status, status.revocation) == ("valid", "unknown")


def test_an_unreachable_crl_leaves_revocation_unknown(tmp_path, authority, crl_server):
    lineage = lineage_with(tmp_path, authority, crl_server.url("/missing.crl"))

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert (status.status, status.revocation) == ("valid", "unknown")


def test_a_file_url_in_a_certificate_is_never_read(tmp_path, authority):
    secret = tmp_path / "not-a-crl"
    secret.write_text("nothing to see")
    lineage = lineage_with(tmp_path, authority, f"file://{secret}")

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert status.revocation == "no crl"


def test_an_unreadable_live_certificate_is_broken_not_fatal(tmp_path, authority):
    lineage = lineage_with(tmp_path, authority)
    cert_file = (lineage.live_dir / "cert.pem").resolve()
    cert_file.write_text("not a certificate")

    status = status_at(lineage, authority, dt.datetime.now(dt.UTC))

    assert status.status == "broken"
    assert status.problem
