"""The store: schema, append-only audit, paging, serial handling."""

import sqlite3
import time

import pytest

from scb_core.store import CertificateRow, Store, format_serial, parse_serial


def cert_row(serial: str, names=("a.home.arpa",), issued_at=None) -> CertificateRow:
    now = issued_at or time.time()
    return CertificateRow(serial, None, list(names), now, now + 86400, now, "PEM")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "scb.db")
    yield store
    store.close()


def test_new_store_is_at_latest_schema_in_wal_mode(store):
    assert store.schema_version >= 1
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_keeps_data(tmp_path, store):
    with store.transaction():
        store.add_certificate(cert_row("0A"))
    store.close()

    again = Store(tmp_path / "scb.db")

    assert again.get_certificate("0A").names == ["a.home.arpa"]


def test_serial_cannot_be_stored_twice(store):
    store.add_certificate(cert_row("0A"))

    with pytest.raises(sqlite3.IntegrityError):
        store.add_certificate(cert_row("0A"))


def test_audit_log_is_append_only(store):
    store.audit("issued", "agent", time.time(), serial="0A")

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE audit SET event = 'x'")


def test_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.add_certificate(cert_row("0A"))
        raise RuntimeError("crash")

    assert store.get_certificate("0A") is None


def test_certificates_page_and_search(store):
    with store.transaction():
        for i in range(250):
            store.add_certificate(cert_row(format_serial(i + 1), [f"h{i}.home.arpa"]))

    page, total = store.list_certificates(offset=0, limit=100)
    found, matches = store.list_certificates(search="h17.", limit=100)

    assert total == 250 and len(page) == 100
    assert matches == 1 and found[0].names == ["h17.home.arpa"]


def test_revoked_certificate_shows_status_and_reason(store):
    store.add_certificate(cert_row("0A"))
    store.revoke("0A", "keyCompromise", time.time(), "operator")

    row = store.get_certificate("0A")

    assert row.status == "revoked" and row.reason == "keyCompromise"


def test_unfinished_requests_are_failed_after_crash(store):
    store.add_request("r1", "127.0.0.1", ["a.home.arpa"], time.time())
    store.add_stage("r1", "connecting", time.time())

    assert store.fail_unfinished_requests("agent restarted", time.time()) == ["r1"]
    request = store.get_request("r1")
    assert request["outcome"] == "failed"
    assert [s["stage"] for s in request["stages"]][-1] == "failed"


def test_a_request_keeps_its_first_outcome(store):
    store.add_request("r1", "127.0.0.1", ["a.home.arpa"], time.time())
    store.finish_request("r1", time.time(), serial="0A")

    store.finish_request("r1", time.time(), None, "timeout", "too late")

    request = store.get_request("r1")
    assert (request["outcome"], request["serial"]) == ("issued", "0A")
    assert [s["stage"] for s in request["stages"]] == ["received", "issued"]


def test_finishing_an_unknown_request_records_nothing(store):
    store.finish_request("nobody", time.time(), None, "internal", "gone")

    assert store.get_request("nobody") is None
    assert store.db.execute("SELECT count(*) FROM request_stages").fetchone()[0] == 0


def test_counter_never_repeats(store):
    assert [store.next_counter("crl") for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    "typed", ["3a:5f", "3A5F", "0x3a5f", " 3a5f "], ids=["colons", "upper", "0x", "ws"]
)
def test_serial_as_typed_is_normalized(typed):
    assert parse_serial(typed) == "3A5F"


def test_serial_is_padded_to_whole_bytes():
    assert format_serial(0xABC) == "0ABC"
