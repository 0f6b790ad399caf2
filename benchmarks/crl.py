"""Time to sign a CRL with 100,000 revoked entries, beside the empty CRL.

    python benchmarks/crl.py                      # ECDSA P-256 issuing CA
    python benchmarks/crl.py --key-type rsa-3072

Both figures come from scb_core.crl.sign_crl in the same run with the same
issuing key: the empty CRL is the fixed cost (one signature, the header),
so the ratio is what the entries themselves cost. Each figure is the median
of several runs, and includes turning store rows into entries. For contrast
it also times cryptography's builder fed one `add_revoked_certificate` at a
time, which copies the entry list on every call and so grows quadratically;
that one runs with fewer entries (doubling them quadruples its time).
"""

import argparse
import datetime as dt
import os
import platform
import secrets
import statistics
import time

import cryptography
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.ca import Authority, create_intermediate, create_root
from scb_core.crl import REASONS, Revocation, sign_crl
from scb_core.keys import KEY_TYPES, generate_key, signature_hash

ENTRIES = 100_000
NAIVE_ENTRIES = 10_000
RUNS = 5
BASELINE_RUNS = 50
GOAL_SECONDS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-type", choices=KEY_TYPES, default="ec-p256")
    key_type = parser.parse_args().key_type

    print(
        f"python {platform.python_version()}, cryptography "
        f"{cryptography.__version__}, {os.cpu_count()} CPUs, issuing key {key_type}"
    )
    authority = make_authority(key_type)
    revocations = make_revocations(ENTRIES)

    empty = median_seconds(lambda: sign(authority, []), BASELINE_RUNS)
    full = median_seconds(lambda: sign(authority, revocations), RUNS)
    encode = median_seconds(lambda: encode_both(sign(authority, revocations)), RUNS)
    naive = median_seconds(
        lambda: sign_one_at_a_time(authority, revocations[:NAIVE_ENTRIES]), 1
    )

    print(f"{'':52} {'ms':>9} {'vs empty':>9}")
    row("empty CRL (baseline)", empty, empty)
    row(f"{ENTRIES:,} entries, sign_crl", full, empty)
    row(f"{ENTRIES:,} entries, sign_crl + DER + PEM", encode, empty)
    row(f"{NAIVE_ENTRIES:,} entries, one add_revoked_certificate each", naive, empty)
    verdict = "met" if full <= GOAL_SECONDS else "MISSED"
    print(f"goal: {ENTRIES:,} entries in <= {GOAL_SECONDS:g} s: {verdict}")


def make_authority(key_type: str) -> Authority:
    root_key, issuer_key = generate_key(key_type), generate_key(key_type)
    root = create_root("Benchmark CA", root_key)
    issuer = create_intermediate(root, root_key, "Benchmark issuing CA", issuer_key, [])
    return Authority(root=root, issuer_key=issuer_key, chain=(issuer,))


def make_revocations(count: int) -> list[Revocation]:
    """Serials of 128 random bits, every reason in turn, as the store holds them."""
    reasons = list(REASONS)
    at = time.time()
    return [
        Revocation(format(secrets.randbits(128), "X"), reasons[n % len(reasons)], at)
        for n in range(count)
    ]


def sign(authority: Authority, revocations) -> x509.CertificateRevocationList:
    this_update = dt.datetime.now(dt.UTC)
    return sign_crl(
        authority, revocations, 1, this_update, this_update + dt.timedelta(days=7)
    )


def encode_both(crl: x509.CertificateRevocationList) -> None:
    crl.public_bytes(Encoding.DER)
    crl.public_bytes(Encoding.PEM)


def sign_one_at_a_time(authority: Authority, revocations) -> None:
    """The textbook builder chain, for contrast with sign_crl."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.issuer.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
    )
    for revocation in revocations:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(revocation.serial, 16))
            .revocation_date(now)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    key = authority.issuer_key
    builder.sign(key, signature_hash(key))


def median_seconds(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(label: str, seconds: float, baseline: float) -> None:
    print(f"{label:52} {seconds * 1000:9.2f} {seconds / baseline:8.0f}x")


if __name__ == "__main__":
    main()
