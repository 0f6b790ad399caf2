"""`scb-agent check` names every way a store can go wrong.

One CA is made with the real `scb-agent init`; its store is filled with
certificates the CA really signed; each test corrupts its own copy one way
and runs the real command against it.
"""

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scb_core.authority_files import load_authority
from scb_core.ca import LeafSpec, issue_leaf
from scb_core.keys import generate_key
from scb_core.store import CertificateRow, Store, format_serial
from tests.helpers import make_authority
from tests.lab import dirs_env, run_scb

NAMES = ["a.home.arpa", "b.home.arpa", "c.home.arpa"]


def add_issued(store: Store, authority, name: str, request_id: str) -> str:
    """A request that went all the way, as the agent records it."""
    spec = LeafSpec([name], generate_key("ec-p256").public_key(), x509.Name([]), 90)
    leaf = issue_leaf(authority, spec)
    serial = format_serial(leaf.serial_number)
    at = time.time()
    store.add_request(request_id, "127.0.0.2", [name], at)
    store.add_stage(request_id, "signing", at)
    store.add_certificate(
        CertificateRow(
            serial=serial,
            request_id=request_id,
            names=[name],
            not_before=leaf.not_valid_before_utc.timestamp(),
            not_after=leaf.not_valid_after_utc.timestamp(),
            issued_at=at,
            pem=leaf.public_bytes(Encoding.PEM).decode(),
        )
    )
    store.finish_request(request_id, at, serial=serial)
    return serial


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check-template")
    env = dirs_env(root)
    run_scb(
        env,
        "init",
        "--allow-domain",
        "home.arpa",
        "--resolver",
        "127.0.0.1:53",
        "--listen",
        "127.0.0.1:8443",
        "--server-name",
        "127.0.0.1",
        check=True,
    )
    authority = load_authority(root / "state" / "ca", None)
    store = Store(root / "state" / "scb.db")
    with store.transaction():
        for number, name in enumerate(NAMES):
            add_issued(store, authority, name, f"req{number}")
        store.add_request("refused", "127.0.0.3", ["x.home.arpa"], time.time())
        store.finish_request("refused", time.time(), None, "policy_denied", "no")
    store.close()
    return root


@pytest.fixture
def lab_copy(template, tmp_path) -> Path:
    copy = tmp_path / "lab"
    shutil.copytree(template, copy)
    return copy


def check(root: Path):
    return run_scb(dirs_env(root), "check")


def corrupt(root: Path, *statements: str, params=()) -> None:
    """Raw SQL, as a bug or a hand edit would do it (no foreign keys)."""
    db = sqlite3.connect(root / "state" / "scb.db", isolation_level=None)
    for statement in statements:
        db.execute(statement, params)
    db.close()


def first_serial(root: Path) -> str:
    db = sqlite3.connect(root / "state" / "scb.db")
    serial = db.execute("SELECT serial FROM certificates ORDER BY rowid").fetchone()
    db.close()
    return serial[0]


def assert_problem(result, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "scb-agent check:" in line]
    assert any(all(word in line for word in words) for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_a_sound_store_passes_and_says_what_it_counted(lab_copy):
    result = check(lab_copy)

    assert result.returncode == 0, result.stderr
    assert "is sound (agent stopped): 3 certificates, 4 requests" in result.stdout


def test_a_missing_store_is_a_usage_error(lab_copy):
    (lab_copy / "state" / "scb.db").unlink()

    result = check(lab_copy)

    assert result.returncode == 2
    assert "no store at" in result.stderr


def test_a_schema_version_from_elsewhere_is_named(lab_copy):
    corrupt(lab_copy, "PRAGMA user_version = 7")

    assert_problem(check(lab_copy), "schema version is 7")


def test_a_serial_filed_twice_in_another_spelling_is_named(lab_copy):
    serial = first_serial(lab_copy)
    corrupt(
        lab_copy,
        "INSERT INTO certificates (serial, request_id, names, not_before,"
        " not_after, issued_at, pem) SELECT '00' || serial, request_id, names,"
        " not_before, not_after, issued_at, pem FROM certificates WHERE serial = ?",
        params=(serial,),
    )

    assert_problem(check(lab_copy), "appears twice", serial)


def test_a_certificate_pem_that_does_not_parse_is_named(lab_copy):
    serial = first_serial(lab_copy)
    corrupt(
        lab_copy,
        "UPDATE certificates SET pem = 'garbage' WHERE serial = ?",
        params=(serial,),
    )

    assert_problem(check(lab_copy), f"certificate {serial}", "does not parse")


def test_a_certificate_another_ca_signed_is_named(lab_copy):
    stranger, _ = make_authority()
    spec = LeafSpec(
        ["a.home.arpa"], generate_key("ec-p256").public_key(), x509.Name([]), 90
    )
    leaf = issue_leaf(stranger, spec)
    serial = format_serial(leaf.serial_number)
    corrupt(
        lab_copy,
        "INSERT INTO certificates (serial, request_id, names, not_before,"
        " not_after, issued_at, pem) VALUES (?, NULL, 'a.home.arpa', 0, 0, 0, ?)",
        params=(serial, leaf.public_bytes(Encoding.PEM).decode()),
    )

    assert_problem(check(lab_copy), f"certificate {serial}", "not signed by this CA")


def test_a_row_whose_serial_differs_from_its_pem_is_named(lab_copy):
    serial = first_serial(lab_copy)
    corrupt(
        lab_copy,
        "UPDATE certificates SET serial = 'ABCD' WHERE serial = ?",
        params=(serial,),
    )

    assert_problem(check(lab_copy), "certificate ABCD", "holds serial")


def test_a_row_filed_under_other_names_is_named(lab_copy):
    serial = first_serial(lab_copy)
    corrupt(
        lab_copy,
        "UPDATE certificates SET names = 'evil.home.arpa' WHERE serial = ?",
        params=(serial,),
    )

    assert_problem(check(lab_copy), f"certificate {serial}", "evil.home.arpa")


def test_an_orphan_stage_is_named(lab_copy):
    corrupt(
        lab_copy,
        "INSERT INTO request_stages (request_id, stage, at)"
        " VALUES ('ghost', 'resolving', 1)",
    )

    assert_problem(check(lab_copy), "stage of request ghost has no request row")


def test_a_revocation_of_an_unknown_certificate_is_named(lab_copy):
    corrupt(
        lab_copy,
        "INSERT INTO revocations (serial, reason, revoked_at, actor)"
        " VALUES ('BEEF', 'keyCompromise', 1, 'admin')",
    )

    assert_problem(check(lab_copy), "revocation of BEEF")


def test_an_issued_request_without_its_certificate_is_named(lab_copy):
    serial = first_serial(lab_copy)
    corrupt(
        lab_copy,
        "DELETE FROM certificates WHERE serial = ?",
        params=(serial,),
    )

    assert_problem(check(lab_copy), "request req0 is marked issued")


def test_a_request_left_mid_stage_is_stuck_when_the_agent_is_stopped(lab_copy):
    corrupt(
        lab_copy,
        "INSERT INTO requests (id, peer, names, stage, created_at, updated_at)"
        " VALUES ('halfway', '127.0.0.2', '[]', 'connecting', 1, 1)",
        "INSERT INTO request_stages (request_id, stage, at)"
        " VALUES ('halfway', 'connecting', 1)",
    )

    assert_problem(check(lab_copy), "request halfway is stuck", "'connecting'")


def test_an_unknown_outcome_is_named(lab_copy):
    corrupt(lab_copy, "UPDATE requests SET outcome = 'maybe', stage = 'maybe'")

    assert_problem(check(lab_copy), "unknown outcome 'maybe'")


def test_a_dropped_audit_trigger_is_named(lab_copy):
    corrupt(lab_copy, "DROP TRIGGER audit_no_delete")

    assert_problem(check(lab_copy), "audit_no_delete", "append-only")


def test_a_file_that_is_not_sqlite_is_named(lab_copy):
    (lab_copy / "state" / "scb.db").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (lab_copy / "state" / f"scb.db{suffix}").unlink(missing_ok=True)

    result = check(lab_copy)

    assert result.returncode in (1, 2)
    assert "not a database" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_page_fails_the_integrity_check(lab_copy):
    path = lab_copy / "state" / "scb.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode=DELETE")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root_page = db.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'certificates_by_names'"
    ).fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    start = (root_page - 1) * page_size
    data[start + 100 : start + page_size] = b"\xa5" * (page_size - 100)
    path.write_bytes(bytes(data))

    result = check(lab_copy)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "scb-agent check:" in result.stderr
    assert "Traceback" not in result.stderr
