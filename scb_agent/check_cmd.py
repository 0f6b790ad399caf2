"""`scb-agent check`: does the store still tell the truth?

Read-only, so it is safe beside a running agent: SQLite's WAL lets a reader
see the last commit while the agent writes. Every problem found is printed on
its own line naming the row; the exit status is 1 if there was any.

What a sound store looks like: the schema version this SCB writes; SQLite's
own integrity check passes; every certificate row parses, carries the serial
and names it is filed under and was signed by this CA's issuing key; no
serial appears twice, not even spelled differently; every stage, revocation
and issued request points at a row that exists; and no request sits in a
non-final stage longer than the agent could still be working on it.
"""

import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from scb_core.config import load_agent_config
from scb_core.errors import ConfigError
from scb_core.paths import Paths
from scb_core.store import FINAL_OUTCOMES, MIGRATIONS

from .cli import EXIT_FAILED

# A running agent's requests are unfinished for at most their timeout, plus
# the approval wait; give the clock this much slack beyond that.
_SLACK_SECONDS = 60


def run_check(args, paths: Paths) -> int:
    if not paths.store.exists():
        raise ConfigError(f"no store at {paths.store}: run `scb-agent init` first")
    issuer = _issuer(paths)
    running = _agent_running(paths.admin_socket)
    patience = _patience(paths) if running else 0.0

    db = open_read_only(paths.store)
    try:
        problems = list(find_problems(db, issuer, patience, time.time()))
        counts = _counts(db)
    finally:
        db.close()

    for problem in problems:
        print(f"scb-agent check: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problems in {paths.store}", file=sys.stderr)
        return EXIT_FAILED
    state = "running" if running else "stopped"
    print(
        f"store {paths.store} is sound (agent {state}): "
        f"{counts['certificates']} certificates, {counts['requests']} requests"
    )
    return 0


def open_read_only(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the store {path} read-only: {exc}") from exc
    return db


def find_problems(
    db: sqlite3.Connection,
    issuer: x509.Certificate,
    patience: float,
    now: float,
) -> Iterator[str]:
    """Every problem in the store, one sentence each.

    `patience` is how long a request may stay unfinished (0: the agent is
    stopped, so none may).
    """
    try:
        yield from _schema(db)
        if _tables(db) >= _EXPECTED_TABLES:
            yield from _certificates(db, issuer)
            yield from _references(db)
            yield from _requests(db, patience, now)
    except sqlite3.DatabaseError as exc:
        yield f"the store cannot be read: {exc}"


_EXPECTED_TABLES = {
    "requests",
    "request_stages",
    "certificates",
    "revocations",
    "bans",
    "rate_state",
    "audit",
    "counters",
}


def _tables(db) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


def _schema(db) -> Iterator[str]:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version < len(MIGRATIONS):
        yield (
            f"schema version is {version}; this SCB writes version "
            f"{len(MIGRATIONS)} (the agent migrates the store when it starts)"
        )
    elif version > len(MIGRATIONS):
        yield (
            f"schema version is {version}; this SCB writes version "
            f"{len(MIGRATIONS)}: a newer SCB wrote this store"
        )

    for (line,) in db.execute("PRAGMA integrity_check"):
        if line != "ok":
            yield f"sqlite integrity check: {line}"

    missing = _EXPECTED_TABLES - _tables(db)
    if missing:
        yield f"tables missing: {', '.join(sorted(missing))}"
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    triggers = {row[0] for row in rows}
    for name in ("audit_no_update", "audit_no_delete"):
        if name not in triggers:
            yield f"trigger {name} is gone: the audit log is no longer append-only"


def _certificates(db, issuer: x509.Certificate) -> Iterator[str]:
    seen: dict[int, str] = {}
    rows = db.execute("SELECT serial, names, pem FROM certificates ORDER BY rowid")
    for serial, names, pem in rows:
        try:
            number = int(serial, 16)
        except (TypeError, ValueError):
            yield f"certificate row serial {serial!r} is not hexadecimal"
            number = None
        if number is not None and number in seen:
            yield f"serial {serial} appears twice (also as {seen[number]})"
        elif number is not None:
            seen[number] = serial
        yield from _certificate_row(serial, number, names, pem, issuer)


def _certificate_row(serial, number, names, pem, issuer) -> Iterator[str]:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, AttributeError) as exc:
        yield f"certificate {serial}: the PEM does not parse ({exc})"
        return

    if number is not None and cert.serial_number != number:
        yield (
            f"certificate {serial}: the PEM holds serial {cert.serial_number:X} instead"
        )
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as exc:
        reason = str(exc) or "the signature does not verify"
        yield f"certificate {serial}: not signed by this CA's issuer ({reason})"

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    if " ".join(dns_names) != names:
        yield (
            f"certificate {serial}: filed under names {names!r} but the "
            f"certificate names {' '.join(dns_names)!r}"
        )


# (what, query finding the bad rows): each row's first column names it.
_DANGLING = [
    (
        "stage of request {} has no request row",
        "SELECT DISTINCT request_id FROM request_stages WHERE request_id"
        " NOT IN (SELECT id FROM requests)",
    ),
    (
        "revocation of {} names no certificate in the store",
        "SELECT serial FROM revocations WHERE serial"
        " NOT IN (SELECT serial FROM certificates)",
    ),
    (
        "request {} is marked issued but its certificate is not in the store",
        "SELECT id FROM requests WHERE outcome = 'issued' AND (serial IS NULL"
        " OR serial NOT IN (SELECT serial FROM certificates))",
    ),
    (
        "certificate {} belongs to a request that is not in the store",
        "SELECT serial FROM certificates WHERE request_id IS NOT NULL AND"
        " request_id NOT IN (SELECT id FROM requests)",
    ),
    (
        "request {} has an outcome but no matching final stage",
        "SELECT id FROM requests WHERE outcome IS NOT NULL AND stage != outcome",
    ),
    (
        "request {} has no stage history",
        "SELECT id FROM requests WHERE id NOT IN"
        " (SELECT request_id FROM request_stages)",
    ),
]


def _references(db) -> Iterator[str]:
    for sentence, query in _DANGLING:
        for row in db.execute(query):
            yield sentence.format(row[0])

    outcomes = ", ".join(f"'{o}'" for o in FINAL_OUTCOMES)
    query = (
        "SELECT id, outcome FROM requests WHERE outcome IS NOT NULL"
        f" AND outcome NOT IN ({outcomes})"
    )
    for request_id, outcome in db.execute(query):
        yield f"request {request_id} has the unknown outcome {outcome!r}"


def _requests(db, patience: float, now: float) -> Iterator[str]:
    rows = db.execute(
        "SELECT id, stage, updated_at FROM requests WHERE outcome IS NULL"
        " AND updated_at <= ? ORDER BY created_at",
        (now - patience,),
    )
    for request_id, stage, updated_at in rows:
        age = max(0.0, now - updated_at)
        yield (
            f"request {request_id} is stuck in stage {stage!r} "
            f"(last change {age:.0f} s ago)"
        )


def _counts(db) -> dict[str, int]:
    one = db.execute
    return {
        "certificates": one("SELECT count(*) FROM certificates").fetchone()[0],
        "requests": one("SELECT count(*) FROM requests").fetchone()[0],
    }


def _issuer(paths: Paths) -> x509.Certificate:
    path = paths.ca_dir / "issuer.pem"
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the issuing CA {path}: {exc}") from exc


def _agent_running(admin_socket: Path) -> bool:
    """Someone answers on the admin socket: the agent is up."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(admin_socket))
        except OSError:
            return False
    return True


def _patience(paths: Paths) -> float:
    config = load_agent_config(paths.agent_config)
    waits = config.timeouts.request + config.timeouts.message
    if config.approval == "manual" or config.manual_approval_domains:
        waits += config.approval_timeout
    return waits + _SLACK_SECONDS
