"""Finding certificates in the store: any part of a name or serial, paged."""

import sqlite3
import time

import pytest

from scb_core import store as store_module
from scb_core.store import MIGRATIONS, CertificateRow, Store, format_serial

DAY = 86400.0


def row(number: int, names: list[str], expires_in: float = 90 * DAY):
    now = time.time()
    return CertificateRow(
        serial=format_serial(number),
        request_id=None,
        names=names,
        not_before=now - 60,
        not_after=now + expires_in,
        issued_at=now,
        pem="-----BEGIN CERTIFICATE-----\n",
    )


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "scb.db")
    with store.transaction():
        store.add_certificates(
            row(0x3A5F00 + i, [f"svc{i}.lab.home.arpa"]) for i in range(30)
        )
        store.add_certificate(row(0xBEEF, ["old.home.arpa"], expires_in=-DAY))
        store.add_certificate(
            row(0xC0FFEE, ["printer.office.home.arpa", "p.home.arpa"])
        )
    store.revoke("3A5F03", "superseded", time.time(), "operator")
    yield store
    store.close()


def serials(page) -> list[str]:
    return [certificate.serial for certificate in page]


def test_search_finds_any_part_of_any_name(store):
    page, total = store.list_certificates(search="office")

    assert total == 1 and page[0].names == ["printer.office.home.arpa", "p.home.arpa"]
    assert store.list_certificates(search="P.HOME")[1] == 1  # case does not matter


def test_search_finds_a_serial_typed_with_colons_or_in_lower_case(store):
    assert serials(store.list_certificates(search="c0:ff:ee")[0]) == ["C0FFEE"]
    assert serials(store.list_certificates(search="beef")[0]) == ["BEEF"]


def test_a_search_shorter_than_the_index_still_finds_its_matches(store):
    page, total = store.list_certificates(search="p.")

    assert total == 1 and serials(page) == ["C0FFEE"]


def test_search_pages_newest_first_and_counts_every_match(store):
    first, total = store.list_certificates(search="lab.home", limit=10)
    second, _ = store.list_certificates(search="lab.home", offset=10, limit=10)

    assert total == 30
    assert serials(first) == [format_serial(0x3A5F00 + i) for i in range(29, 19, -1)]
    assert serials(second) == [format_serial(0x3A5F00 + i) for i in range(19, 9, -1)]


def test_search_combines_with_status(store):
    revoked, total = store.list_certificates(search="svc", status="revoked")
    valid = store.list_certificates(search="svc", status="valid")[1]
    expired = store.list_certificates(search="home", status="expired")[0]

    assert total == 1 and revoked[0].reason == "superseded"
    assert valid == 29
    assert serials(expired) == ["BEEF"]


def test_search_text_is_never_read_as_query_syntax(store):
    for typed in ['"', 'a" OR "b', "svc*", "NOT lab", "%", "_", "\\", "s%"]:
        assert store.list_certificates(search=typed)[1] == 0


def test_a_search_stops_counting_past_the_limit(store, monkeypatch):
    monkeypatch.setattr(store_module, "SEARCH_COUNT_LIMIT", 10)

    page, total = store.list_certificates(search="svc", limit=20)
    valid = store.list_certificates(search="svc", status="valid")[1]

    assert total == 11 and len(page) == 20
    assert valid == 11
    assert store.list_certificates()[1] == 32  # no search: an exact count


def test_rows_written_past_the_store_api_are_searchable(store):
    # As `scb-agent check`'s tests and any repair by hand with sqlite3 do.
    store.db.execute(
        "INSERT INTO certificates (serial, request_id, names, not_before,"
        " not_after, issued_at, pem) VALUES ('0ABC', NULL, 'raw.home.arpa',"
        " 0, 0, 0, '')"
    )
    assert serials(store.list_certificates(search="raw.home")[0]) == ["0ABC"]

    store.db.execute(
        "UPDATE certificates SET names = 'moved.home.arpa' WHERE serial = '0ABC'"
    )
    assert store.list_certificates(search="raw.home")[1] == 0
    assert store.list_certificates(search="moved")[1] == 1


def test_upgrading_an_older_store_indexes_its_certificates(tmp_path):
    path = tmp_path / "scb.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIGRATIONS[0] + ";PRAGMA user_version=1;")
    db.execute(
        "INSERT INTO certificates (serial, request_id, names, not_before,"
        " not_after, issued_at, pem) VALUES ('0D', NULL, 'before.home.arpa',"
        " 0, 0, 0, '')"
    )
    db.close()

    store = Store(path)

    assert store.schema_version == len(MIGRATIONS)
    assert serials(store.list_certificates(search="before")[0]) == ["0D"]
    store.close()
