"""The agent's SQLite store: requests, certificates, revocations, bans, rate
state and the audit log.

WAL mode with `synchronous=FULL`, so a committed transaction survives a crash
or power loss. Methods never commit on their own: the caller groups work into
transactions (the agent's writer thread commits many issuances at once; the
CLI uses `transaction()`). The schema is versioned by `PRAGMA user_version`
and moved forward by the MIGRATIONS list, one step per version.
"""

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

FINAL_OUTCOMES = ("issued", "failed")

# A search counts its matches up to one past this and stops there: "more than
# 10,000" is all an operator reads into it, and counting 100,000 hits of the
# index costs more than the page itself.
SEARCH_COUNT_LIMIT = 10_000

MIGRATIONS = [
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        peer TEXT NOT NULL,
        names TEXT NOT NULL,
        stage TEXT NOT NULL,
        outcome TEXT,
        error_code TEXT,
        error_message TEXT,
        serial TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX requests_by_time ON requests (created_at);
    CREATE INDEX requests_open ON requests (outcome) WHERE outcome IS NULL;
    CREATE TABLE request_stages (
        request_id TEXT NOT NULL REFERENCES requests (id),
        stage TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX stages_by_request ON request_stages (request_id);
    CREATE TABLE certificates (
        serial TEXT PRIMARY KEY,
        request_id TEXT,
        names TEXT NOT NULL,
        not_before REAL NOT NULL,
        not_after REAL NOT NULL,
        issued_at REAL NOT NULL,
        pem TEXT NOT NULL
    );
    CREATE INDEX certificates_by_names ON certificates (names);
    CREATE INDEX certificates_by_issued ON certificates (issued_at);
    CREATE TABLE revocations (
        serial TEXT PRIMARY KEY REFERENCES certificates (serial),
        reason TEXT NOT NULL,
        revoked_at REAL NOT NULL,
        actor TEXT NOT NULL
    );
    CREATE TABLE bans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('address', 'network', 'name')),
        value TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        lifted_at REAL,
        strikes INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX bans_by_value ON bans (value);
    CREATE TABLE rate_state (
        key TEXT PRIMARY KEY,
        tat REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        peer TEXT,
        names TEXT,
        serial TEXT,
        request_id TEXT,
        detail TEXT
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
    # Searching 100,000 certificates: `names LIKE '%x%'` read every row, PEM
    # and all. A trigram index finds any part of a name or serial, and walks
    # its matches newest (highest rowid) first, so a page stops early.
    """
    CREATE VIRTUAL TABLE certificate_search USING fts5 (
        text, tokenize = 'trigram'
    );
    INSERT INTO certificate_search (rowid, text)
        SELECT rowid, names || ' ' || serial FROM certificates;
    CREATE TRIGGER certificates_searchable AFTER INSERT ON certificates
        BEGIN INSERT INTO certificate_search (rowid, text)
            VALUES (new.rowid, new.names || ' ' || new.serial); END;
    CREATE TRIGGER certificates_research AFTER UPDATE OF names, serial
        ON certificates
        BEGIN UPDATE certificate_search SET text = new.names || ' ' || new.serial
            WHERE rowid = old.rowid; END;
    CREATE TRIGGER certificates_unsearchable AFTER DELETE ON certificates
        BEGIN DELETE FROM certificate_search WHERE rowid = old.rowid; END;
    CREATE INDEX certificates_by_expiry ON certificates (not_after, serial);
    """,
]


@dataclass(frozen=True)
class CertificateRow:
    serial: str
    request_id: str | None
    names: list[str]
    not_before: float
    not_after: float
    issued_at: float
    pem: str
    revoked_at: float | None = None
    reason: str | None = None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.not_after < time.time() else "valid"

    def as_dict(self, with_pem: bool = False) -> dict:
        out = {
            "serial": self.serial,
            "names": self.names,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
            "status": self.status,
            "reason": self.reason,
            "revoked_at": self.revoked_at,
            "request_id": self.request_id,
        }
        if with_pem:
            out["pem"] = self.pem
        return out


def format_serial(number: int) -> str:
    """Upper-case hex, padded to whole bytes, as `openssl x509 -serial` prints."""
    text = format(number, "X")
    return text.zfill(len(text) + len(text) % 2)


def parse_serial(text: str) -> str:
    """Normalize hex typed by a person ("3a:5f", "0x3A5F") to format_serial's form."""
    cleaned = text.strip().replace(":", "").removeprefix("0x").removeprefix("0X")
    try:
        return format_serial(int(cleaned, 16))
    except ValueError as exc:
        raise ValueError(f"serial {text!r} is not hexadecimal") from exc


class Store:
    """One connection to the store; not thread-safe, callers own one each."""

    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Each step and its version bump commit together, or not at all."""
        for version in range(self.schema_version, len(MIGRATIONS)):
            self.db.executescript(
                "BEGIN IMMEDIATE;"
                + MIGRATIONS[version]
                + f";PRAGMA user_version={version + 1};COMMIT;"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # Requests ------------------------------------------------------------

    def add_request(self, request_id: str, peer: str, names: list[str], at: float):
        self.db.execute(
            "INSERT INTO requests (id, peer, names, stage, created_at, updated_at)"
            " VALUES (?, ?, ?, 'received', ?, ?)",
            (request_id, peer, json.dumps(names), at, at),
        )
        self.add_stage(request_id, "received", at)

    def set_request_names(self, request_id: str, names: list[str]) -> None:
        self.db.execute(
            "UPDATE requests SET names = ? WHERE id = ?",
            (json.dumps(names), request_id),
        )

    def add_stage(self, request_id: str, stage: str, at: float) -> None:
        self.db.execute(
            "INSERT INTO request_stages (request_id, stage, at) VALUES (?, ?, ?)",
            (request_id, stage, at),
        )
        self.db.execute(
            "UPDATE requests SET stage = ?, updated_at = ? WHERE id = ?",
            (stage, at, request_id),
        )

    def finish_request(
        self,
        request_id: str,
        at: float,
        serial: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        outcome = "issued" if serial else "failed"
        # The first outcome stands: a timeout that fires while the certificate
        # commits must not turn an issued request into a failed one.
        finished = self.db.execute(
            "UPDATE requests SET outcome = ?, serial = ?, error_code = ?,"
            " error_message = ?, stage = ?, updated_at = ?"
            " WHERE id = ? AND outcome IS NULL",
            (outcome, serial, error_code, error_message, outcome, at, request_id),
        )
        if finished.rowcount:
            self.db.execute(
                "INSERT INTO request_stages (request_id, stage, at) VALUES (?, ?, ?)",
                (request_id, outcome, at),
            )

    def fail_unfinished_requests(self, reason: str, at: float) -> list[str]:
        """After a crash: no request may stay in a non-final stage."""
        ids = [
            row[0]
            for row in self.db.execute("SELECT id FROM requests WHERE outcome IS NULL")
        ]
        for request_id in ids:
            self.finish_request(request_id, at, None, "internal", reason)
        return ids

    def list_requests(self, limit: int = 100, pending_only: bool = False) -> list[dict]:
        where = "WHERE outcome IS NULL" if pending_only else ""
        rows = self.db.execute(
            f"SELECT * FROM requests {where} ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
        return [_request_dict(row) for row in rows]

    def get_request(self, request_id: str) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        out = _request_dict(row)
        out["stages"] = [
            {"stage": s["stage"], "at": s["at"]}
            for s in self.db.execute(
                "SELECT stage, at FROM request_stages WHERE request_id = ?"
                " ORDER BY rowid",
                (request_id,),
            )
        ]
        return out

    # Certificates ---------------------------------------------------------

    def add_certificate(self, row: CertificateRow) -> None:
        self.add_certificates([row])

    def add_certificates(self, rows: Iterable[CertificateRow]) -> None:
        """Many rows in one statement: imports, and benchmarks filling a store."""
        self.db.executemany(
            "INSERT INTO certificates"
            " (serial, request_id, names, not_before, not_after, issued_at, pem)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    row.serial,
                    row.request_id,
                    " ".join(row.names),
                    row.not_before,
                    row.not_after,
                    row.issued_at,
                    row.pem,
                )
                for row in rows
            ),
        )

    def get_certificate(self, serial: str) -> CertificateRow | None:
        row = self.db.execute(
            _CERT_SELECT + " WHERE c.serial = ?", (serial,)
        ).fetchone()
        return _certificate(row) if row else None

    def list_certificates(
        self,
        search: str = "",
        status: str = "",
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[CertificateRow], int]:
        """One page of certificates, newest first, and how many match in all.

        Newest means most recently stored (the highest rowid), the order the
        search index hands matches over in, so a page never sorts them all.
        `search` is any part of a name or of the serial; with one, the count
        stops at SEARCH_COUNT_LIMIT + 1.
        """
        search = search.strip()
        source, where, args = _certificate_source(search, status)
        count = _certificate_count(search, status)
        total = self.db.execute(count, args).fetchone()[0]
        rows = self.db.execute(
            f"SELECT c.*, r.revoked_at, r.reason {source} {where}"
            f" ORDER BY {'s' if search else 'c'}.rowid DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_certificate(row) for row in rows], total

    # Revocations ----------------------------------------------------------

    def revoke(self, serial: str, reason: str, at: float, actor: str) -> None:
        self.db.execute(
            "INSERT INTO revocations (serial, reason, revoked_at, actor)"
            " VALUES (?, ?, ?, ?)",
            (serial, reason, at, actor),
        )

    def revocations(self) -> list[tuple[str, str, float]]:
        return [
            (row[0], row[1], row[2])
            for row in self.db.execute(
                "SELECT serial, reason, revoked_at FROM revocations ORDER BY serial"
            )
        ]

    def next_counter(self, name: str) -> int:
        """A value never handed out before (the CRL number, for one)."""
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return self.db.execute(
            "SELECT value FROM counters WHERE name = ?", (name,)
        ).fetchone()[0]

    # Bans and rate state ---------------------------------------------------

    def add_ban(
        self,
        kind: str,
        value: str,
        reason: str,
        actor: str,
        at: float,
        expires_at: float | None,
        strikes: int = 1,
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO bans (kind, value, reason, actor, created_at, expires_at,"
            " strikes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, value, reason, actor, at, expires_at, strikes),
        )
        return cursor.lastrowid

    def lift_ban(self, ban_id: int, at: float) -> bool:
        cursor = self.db.execute(
            "UPDATE bans SET lifted_at = ? WHERE id = ? AND lifted_at IS NULL",
            (at, ban_id),
        )
        return cursor.rowcount == 1

    def active_bans(self, at: float) -> list[dict]:
        rows = self.db.execute(
            "SELECT * FROM bans WHERE lifted_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (at,),
        )
        return [dict(row) for row in rows]

    def get_ban(self, ban_id: int) -> dict | None:
        row = self.db.execute("SELECT * FROM bans WHERE id = ?", (ban_id,)).fetchone()
        return dict(row) if row else None

    def strikes(self, value: str) -> int:
        """How many automatic bans this value has had: the next ban doubles."""
        return self.db.execute(
            "SELECT coalesce(max(strikes), 0) FROM bans WHERE value = ?"
            " AND actor = 'agent'",
            (value,),
        ).fetchone()[0]

    def live_rate_state(self, at: float) -> dict[str, float]:
        """Every TAT still ahead of `at`; the rest are full buckets, dropped."""
        self.db.execute("DELETE FROM rate_state WHERE tat <= ?", (at,))
        return dict(self.db.execute("SELECT key, tat FROM rate_state").fetchall())

    def set_rate_tat(self, key: str, tat: float) -> None:
        self.db.execute(
            "INSERT INTO rate_state (key, tat) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
            (key, tat),
        )

    # Audit ----------------------------------------------------------------

    def audit(
        self,
        event: str,
        actor: str,
        at: float,
        peer: str | None = None,
        names: list[str] | None = None,
        serial: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO audit (at, event, actor, peer, names, serial, request_id,"
            " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                event,
                actor,
                peer,
                " ".join(names) if names else None,
                serial,
                request_id,
                detail,
            ),
        )

    def list_audit(self, limit: int = 100, search: str = "") -> list[dict]:
        args: tuple = ()
        where = ""
        if search:
            where = (
                "WHERE event LIKE ?1 OR actor LIKE ?1 OR peer LIKE ?1"
                " OR names LIKE ?1 OR serial LIKE ?1 OR detail LIKE ?1"
            )
            args = (f"%{search}%",)
        rows = self.db.execute(
            f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT {int(limit)}", args
        )
        return [dict(row) for row in rows]

    def counts(self, at: float) -> dict[str, int]:
        one = self.db.execute
        return {
            "certificates": one("SELECT count(*) FROM certificates").fetchone()[0],
            "valid": one(
                "SELECT count(*) FROM certificates c WHERE not_after > ? AND NOT"
                " EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)",
                (at,),
            ).fetchone()[0],
            "revoked": one("SELECT count(*) FROM revocations").fetchone()[0],
            "pending": one(
                "SELECT count(*) FROM requests WHERE outcome IS NULL"
            ).fetchone()[0],
            "bans": len(self.active_bans(at)),
        }


_CERT_SELECT = (
    "SELECT c.*, r.revoked_at, r.reason FROM certificates c"
    " LEFT JOIN revocations r ON r.serial = c.serial"
)


_SEARCH_SOURCE = (
    "FROM certificate_search s CROSS JOIN certificates c ON c.rowid = s.rowid"
    " LEFT JOIN revocations r ON r.serial = c.serial"
)
_SERIAL_WITH_COLONS = re.compile(r"[0-9a-f]{1,2}(:[0-9a-f]{1,2})+:?")


def _certificate_source(search: str, status: str) -> tuple[str, str, tuple]:
    """FROM and WHERE for a listing, and their arguments.

    A search starts from the trigram index (CROSS JOIN keeps it outermost);
    revoked certificates start from the few revocations.
    """
    clauses, args = [], []
    if search:
        source = _SEARCH_SOURCE
        clause, term = _search_clause(search)
        clauses.append(clause)
        args.append(term)
    elif status == "revoked":
        source = "FROM revocations r JOIN certificates c ON c.serial = r.serial"
    else:
        source = "FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial"

    if status == "revoked":
        clauses.append("r.serial IS NOT NULL")
    elif status == "valid":
        clauses.append("r.serial IS NULL AND c.not_after > ?")
        args.append(time.time())
    elif status == "expired":
        clauses.append("r.serial IS NULL AND c.not_after <= ?")
        args.append(time.time())
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return source, where, tuple(args)


def _certificate_count(search: str, status: str) -> str:
    """The count for a listing, from the narrowest table that can answer."""
    if not search:
        if status:
            source, where, _ = _certificate_source(search, status)
            return f"SELECT count(*) {source} {where}"
        return "SELECT count(*) FROM certificates"

    source, where, _ = _certificate_source(search, status)
    if not status:  # the index alone can tell
        source = "FROM certificate_search s"
    limit = SEARCH_COUNT_LIMIT + 1
    return f"SELECT count(*) FROM (SELECT 1 {source} {where} LIMIT {limit})"


def _search_clause(search: str) -> tuple[str, str]:
    """Any part of the names or the serial; "3a:5f" finds serial 3A5F…

    Three characters or more use the trigram index (a quoted phrase is a
    substring there); shorter ones, which it cannot look up, scan its text.
    """
    term = search.strip().lower()
    if _SERIAL_WITH_COLONS.fullmatch(term):
        term = term.replace(":", "")
    if len(term) >= 3:
        return "s.text MATCH ?", '"' + term.replace('"', '""') + '"'
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "s.text LIKE ? ESCAPE '\\'", f"%{escaped}%"


def _certificate(row: sqlite3.Row) -> CertificateRow:
    return CertificateRow(
        serial=row["serial"],
        request_id=row["request_id"],
        names=row["names"].split(),
        not_before=row["not_before"],
        not_after=row["not_after"],
        issued_at=row["issued_at"],
        pem=row["pem"],
        revoked_at=row["revoked_at"],
        reason=row["reason"],
    )


def _request_dict(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["names"] = json.loads(out["names"])
    return out
