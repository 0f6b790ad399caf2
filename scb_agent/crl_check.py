"""Is a host's certificate on its CA's CRL? Fetched over HTTP, checked, cached.

The CRL comes from the leaf's CRL distribution point with a short timeout and
counts only when the issuing CA signed it. An unreachable or unusable CRL
gives `unknown`, never an exception: a host must keep working while the CA's
web server is down. `certificates` shows the answer; `renew` replaces a
revoked certificate.
"""

import logging
import urllib.error
import urllib.request

from cryptography import x509

from scb_core.paths import Paths

logger = logging.getLogger(__name__)

CRL_TIMEOUT = 5.0
MAX_CRL_BYTES = 16 * 1024 * 1024


class CrlCache:
    """CRLs fetched once per listing, by URL: lineages share their CA's CRL."""

    def __init__(self, root: x509.Certificate | None):
        self.root = root
        self._fetched: dict[str, x509.CertificateRevocationList | None] = {}

    def revocation(self, cert: x509.Certificate, issuer) -> str:
        urls = crl_urls(cert)
        if not urls:
            return "no crl"
        if issuer is None:
            return "unknown"

        for url in urls:
            crl = self._crl(url)
            if crl is None:
                continue
            if crl.issuer != issuer.subject or not crl.is_signature_valid(
                issuer.public_key()
            ):
                logger.warning("CRL at %s is not signed by the issuing CA", url)
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            return "revoked" if revoked is not None else "good"
        return "unknown"

    def _crl(self, url: str) -> x509.CertificateRevocationList | None:
        if url not in self._fetched:
            self._fetched[url] = fetch_crl(url)
        return self._fetched[url]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The HTTP(S) URLs of the leaf's CRL distribution points."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points.value
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
        # A certificate must not make us read local files (file://) or worse.
        and name.value.lower().startswith(("http://", "https://"))
    ]


def fetch_crl(url: str) -> x509.CertificateRevocationList | None:
    """The CRL at `url` (DER or PEM), or None with a warning saying why."""
    try:
        with urllib.request.urlopen(url, timeout=CRL_TIMEOUT) as response:
            data = response.read(MAX_CRL_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("cannot fetch the CRL at %s: %s", url, exc)
        return None
    if len(data) > MAX_CRL_BYTES:
        logger.warning("CRL at %s is over %d bytes", url, MAX_CRL_BYTES)
        return None

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        logger.warning("CRL at %s cannot be parsed: %s", url, exc)
        return None


def pinned_root(paths: Paths) -> x509.Certificate | None:
    """The root `bootstrap` pinned, or None when there is none to check with."""
    try:
        return x509.load_pem_x509_certificate(paths.pinned_root.read_bytes())
    except (OSError, ValueError):
        return None
