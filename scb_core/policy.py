"""What the CA agrees to sign, as pure functions of a request and the policy.

Every check runs before any DNS or network work, and every refusal is an
ScbError carrying its JASC/1 code and a sentence naming the bad value.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from .ca import LeafSpec
from .errors import ScbError
from .keys import describe_key

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)

# RFC 5280 upper bounds; C is ISO 3166 alpha-2.
SUBJECT_FIELDS = {
    "CN": (NameOID.COMMON_NAME, 64),
    "O": (NameOID.ORGANIZATION_NAME, 64),
    "OU": (NameOID.ORGANIZATIONAL_UNIT_NAME, 64),
    "C": (NameOID.COUNTRY_NAME, 2),
    "ST": (NameOID.STATE_OR_PROVINCE_NAME, 128),
    "L": (NameOID.LOCALITY_NAME, 128),
}
FIELD_BY_OID = {oid: key for key, (oid, _) in SUBJECT_FIELDS.items()}

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNRECORDABLE = re.compile(r"[^A-Za-z0-9.*_-]")


@dataclass(frozen=True)
class Policy:
    allowed_domains: tuple[str, ...]
    allowed_networks: tuple[IPNetwork, ...] = tuple(
        ipaddress.ip_network(n) for n in DEFAULT_NETWORKS
    )
    challenge_ports: tuple[int, int] = (1, 1023)
    default_validity_days: int = 90
    max_validity_days: int = 397
    max_names: int = 100
    own_addresses: frozenset[IPAddress] = field(default_factory=frozenset)


def shown(value: object, limit: int = 60) -> str:
    """A value quoted for a message, cut short so a hostile one cannot flood it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_name(name: str) -> str:
    """Lower-case A-label form of a DNS name, or policy_denied saying why not."""
    if not isinstance(name, str) or not name:
        raise ScbError("policy_denied", f"name {shown(name)} is empty")

    if "*" in name:
        raise ScbError(
            "policy_denied",
            f"wildcard {shown(name)} refused: a connect challenge cannot prove it",
        )

    if _is_ip_literal(name):
        raise ScbError("policy_denied", f"IP literal {shown(name)} is not a DNS name")

    ascii_name = _to_ascii(name).rstrip(".").lower()
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_valid_label(label) for label in labels):
        raise ScbError("policy_denied", f"name {shown(name)} is not a valid DNS name")
    return ascii_name


def check_name_allowed(name: str, policy: Policy) -> None:
    for suffix in policy.allowed_domains:
        if name == suffix or name.endswith("." + suffix):
            return
    allowed = ", ".join(policy.allowed_domains) or "nothing (allowed_domains is empty)"
    raise ScbError(
        "policy_denied", f"name {name} is outside the allowed domains: {allowed}"
    )


def check_names(names: list[str], policy: Policy) -> list[str]:
    """Normalized, de-duplicated names in request order, each allowed."""
    if not names:
        raise ScbError("bad_csr", "the CSR names no DNS name in subjectAltName")

    if len(names) > policy.max_names:
        raise ScbError(
            "policy_denied",
            f"{len(names)} names requested; at most {policy.max_names} are allowed",
        )

    checked = list(dict.fromkeys(normalize_name(n) for n in names))
    for name in checked:
        check_name_allowed(name, policy)
    return checked


def check_validity(days: int | None, policy: Policy) -> int:
    if days is None:
        return policy.default_validity_days

    if not 1 <= days <= policy.max_validity_days:
        raise ScbError(
            "policy_denied",
            f"validity of {days} days is outside 1 to {policy.max_validity_days}",
        )
    return days


def check_challenge_port(port: int, policy: Policy) -> None:
    low, high = policy.challenge_ports
    if not low <= port <= high:
        raise ScbError(
            "policy_denied",
            f"challenge port {port} is outside the allowed range {low}-{high}",
        )


def check_address(address: IPAddress, name: str, policy: Policy) -> None:
    """Refuse to connect anywhere the operator did not open to challenges."""
    if address in policy.own_addresses:
        raise ScbError(
            "policy_denied",
            f"{name} resolves to {address}, an address of the agent itself",
        )

    if not any(address in network for network in policy.allowed_networks):
        raise ScbError(
            "policy_denied",
            f"{name} resolves to {address}, outside the allowed networks",
        )


def parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise ScbError(
            "bad_csr", f"the CSR is not a PEM PKCS#10 request: {exc}"
        ) from exc

    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # an unsupported algorithm surfaces as many types
        raise ScbError("bad_csr", f"cannot check the CSR signature: {exc}") from exc
    if not valid:
        raise ScbError(
            "bad_csr", "the CSR signature does not verify: no proof of the key"
        )
    return csr


def check_csr(csr_pem: str, validity_days: int | None, policy: Policy) -> LeafSpec:
    """Everything a request must pass before the CA spends network work on it."""
    csr = parse_csr(csr_pem)

    try:
        public_key = csr.public_key()
    except Exception as exc:
        raise ScbError("bad_csr", f"cannot read the CSR key: {exc}") from exc
    describe_key(public_key)

    names = check_names(_csr_dns_names(csr), policy)
    subject = _check_subject(csr.subject, names)
    return LeafSpec(
        names=names,
        public_key=public_key,
        subject=subject,
        validity_days=check_validity(validity_days, policy),
    )


def requested_names(csr_pem: str, limit: int = 100) -> list[str]:
    """The names a CSR asks for, to record with its refusal; never raises.

    A name that is not a valid DNS name keeps only letters, digits and
    ``. * _ -`` (anything else becomes ``?``), cut to 40 characters: nothing
    hostile reaches a log line, a terminal or the console's markup.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        asked = san.value.get_values_for_type(x509.DNSName)
    except Exception:  # whatever made the CSR unusable is already the error
        return []

    names = []
    for name in asked[:limit]:
        try:
            names.append(normalize_name(name))
        except ScbError:
            names.append(_UNRECORDABLE.sub("?", name[:40]))
    return names


def _csr_dns_names(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except Exception as exc:
        raise ScbError("bad_csr", f"cannot read the CSR extensions: {exc}") from exc

    others = [n for n in san.value if not isinstance(n, x509.DNSName)]
    if others:
        raise ScbError(
            "policy_denied",
            f"only DNS names can be certified, not {shown(str(others[0].value))}",
        )
    names = san.value.get_values_for_type(x509.DNSName)
    for name in names:
        # An IA5String holds ASCII only: a U-label here is a malformed CSR,
        # not a name to convert on the requester's behalf.
        if not name.isascii():
            raise ScbError(
                "bad_csr",
                f"dNSName {shown(name)} is not ASCII; send IDNA A-labels (xn--)",
            )
    return names


def _check_subject(subject: x509.Name, names: list[str]) -> x509.Name:
    """Keep O, OU, C, ST, L (and CN, which must be the first name)."""
    kept = []
    for attribute in subject:
        key = FIELD_BY_OID.get(attribute.oid)
        value = attribute.value
        if key is None:
            raise ScbError(
                "policy_denied",
                f"subject field {attribute.oid.dotted_string} is not allowed; "
                "use O, OU, C, ST, L",
            )
        if not isinstance(value, str) or _CONTROL.search(value):
            raise ScbError(
                "bad_csr", f"subject {key}={shown(value)} has control characters"
            )
        _check_field_length(key, value)
        if key == "CN":
            value = _check_common_name(value, names)
        kept.append(x509.NameAttribute(attribute.oid, value))
    return x509.Name(kept)


def _check_field_length(key: str, value: str) -> None:
    limit = SUBJECT_FIELDS[key][1]
    if key == "C" and not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ScbError("policy_denied", f"subject C={shown(value)} must be two letters")
    if not 1 <= len(value) <= limit:
        raise ScbError(
            "policy_denied",
            f"subject {key}={shown(value)} must be 1 to {limit} characters",
        )


def _check_common_name(value: str, names: list[str]) -> str:
    try:
        common = normalize_name(value)
    except ScbError:
        common = None
    if common != names[0]:
        raise ScbError(
            "policy_denied",
            f"subject CN={shown(value)} must equal the first name, {names[0]}",
        )
    return common


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _to_ascii(name: str) -> str:
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ScbError(
            "policy_denied", f"name {shown(name)} is not valid IDNA: {exc}"
        ) from exc


def _valid_label(label: str) -> bool:
    if not _LABEL.match(label):
        return False

    if label.startswith("xn--"):
        try:
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return False
    return True
