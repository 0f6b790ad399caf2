"""The console with 100,000 certificates: Certificates screen and search times.

    python benchmarks/console.py                 # 100,000 beside 1,000
    python benchmarks/console.py --rows 20000    # a quicker run

Two labs in one run, each a real `scb-agent serve` on a store filled through
Store.add_certificates with real leaves signed by that lab's issuing CA (one
to three names each, 1 % revoked). The console runs headless (run_test) and
Pilot presses its keys, so a figure covers all an operator waits for: the
admin socket, the agent's store, JSON both ways and the table filling in.

- screen: from pressing `3` until the Certificates table shows its first page
- search: from pressing Enter in the search box until the table shows the
  matches; one search for each kind an operator types

Each console figure is printed beside the same figure on the small store, as
a ratio; each search also beside the same `certificates` call made straight
over the admin socket (what the agent takes, without the console), and the
socket's bare round trip (connect, one reply) is the floor under them all.
The store's own search is also timed against the `LIKE '%x%'` scan it used
before the trigram index, over the same rows. Figures are medians.
"""

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lab import Lab
from textual import events

from scb_agent.admin_client import AdminClient
from scb_core.authority_files import load_authority
from scb_core.ca import LeafSpec, issue_leaf
from scb_core.keys import generate_key
from scb_core.store import CertificateRow, Store, format_serial
from scb_tui.app import ConsoleApp
from scb_tui.link import AgentLink

ROWS = 100_000
SMALL = 1_000
RUNS = 5
SEARCH_RUNS = 9
ROUND_TRIPS = 50
GOALS = {"screen": 1.0, "search": 0.100}
SERVICES = [
    "grafana", "metrics", "nas", "printer", "wiki", "git", "vault", "ha",
    "camera", "mqtt", "jellyfin", "proxmox", "unifi", "backup", "ldap",
]  # fmt: skip
SITES = ["lab", "office", "rack1", "rack2", "garage"]
BATCH = 5_000
POLL = 0.002


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    rows = parser.parse_args().rows

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{rows:,} certificates beside {SMALL:,}"
    )
    small = measure_lab(SMALL)
    large = measure_lab(rows)
    report(small, large, rows)


def measure_lab(count: int) -> dict:
    """Fill a store with `count` leaves, start its agent, time the console."""
    filled = {}

    def fill(lab: Lab) -> None:
        started = time.perf_counter()
        filled["terms"] = fill_store(lab.state_dir, count)
        filled["seconds"] = time.perf_counter() - started

    with Lab(prepare=fill) as lab:
        print(f"  {count:,} certificates stored in {filled['seconds']:.1f} s")
        socket = lab.state_dir / "admin.sock"
        figures = asyncio.run(drive_console(socket, filled["terms"]))
        figures["store"] = store_search_times(lab.state_dir, filled["terms"])
    return figures


def fill_store(state_dir: Path, count: int) -> dict[str, str]:
    """Real leaves from the lab's issuing CA; the search terms that fit them."""
    authority = load_authority(state_dir / "ca", None)
    public_key = generate_key("ec-p256").public_key()
    rng = random.Random(count)
    store = Store(state_dir / "scb.db")
    serials = []
    for start in range(0, count, BATCH):
        batch = [
            leaf_row(authority, public_key, index, rng)
            for index in range(start, min(start + BATCH, count))
        ]
        with store.transaction():
            store.add_certificates(batch)
            for row in batch[::100]:
                store.revoke(row.serial, "superseded", row.issued_at, "bench")
        serials.append(batch[len(batch) // 2].serial)
    store.close()

    one = count // 2
    return {
        "one name": name_of(one),
        "a service": SERVICES[3],  # printer: one certificate in 15
        "the zone": "home.arpa",  # every certificate
        "serial part": serials[len(serials) // 2][6:14].lower(),
        "two letters": "ld",  # under the index's three: a scan
        "no match": "nothing-like-this",
    }


def name_of(index: int) -> str:
    service = SERVICES[index % len(SERVICES)]
    return f"{service}-{index:06d}.{SITES[index % len(SITES)]}.home.arpa"


def leaf_row(authority, public_key, index: int, rng: random.Random):
    names = [name_of(index)]
    if rng.random() < 0.3:
        names.append(f"{SERVICES[index % len(SERVICES)]}.home.arpa")
    if rng.random() < 0.05:
        names.append(f"alias-{index:06d}.home.arpa")
    spec = LeafSpec(names, public_key, x509.Name([]), rng.choice([30, 90, 365]))
    leaf = issue_leaf(authority, spec, "http://ca.home.arpa/crl.der")
    return CertificateRow(
        serial=format_serial(leaf.serial_number),
        request_id=f"{index:016x}",
        names=names,
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=leaf.not_valid_after_utc.timestamp(),
        issued_at=time.time(),
        pem=leaf.public_bytes(Encoding.PEM).decode(),
    )


async def drive_console(socket: Path, terms: dict[str, str]) -> dict:
    figures = {"round trip": await round_trip(socket)}
    figures["call"] = {
        label: await admin_call(socket, term) for label, term in terms.items()
    }
    screens = []
    searches: dict[str, list[float]] = {label: [] for label in terms}
    for run in range(RUNS):
        app = ConsoleApp(AgentLink(socket))
        async with app.run_test(size=(120, 40)) as pilot:
            await until(partial(ready, app))
            screens.append(await open_certificates(pilot))
            if run == 0:
                for label, term in terms.items():
                    for _ in range(SEARCH_RUNS):
                        searches[label].append(await search(pilot, term))
    figures["screen"] = statistics.median(screens)
    figures["search"] = {k: statistics.median(v) for k, v in searches.items()}
    return figures


async def round_trip(socket: Path) -> float:
    """Connect, ask, read the reply: the floor under every console call."""
    times = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        reader, writer = await asyncio.open_unix_connection(socket)
        writer.write(b'{"id": 1, "command": "subscribe"}\n')
        await reader.readline()
        writer.close()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def admin_call(socket: Path, term: str) -> float:
    """The console's search call made directly: what the agent itself takes."""
    times = []
    for _ in range(SEARCH_RUNS):
        started = time.perf_counter()
        async with AdminClient(socket) as client:
            await client.call("certificates", search=term, limit=100)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def open_certificates(pilot) -> float:
    app = pilot.app
    started = time.perf_counter()
    press_now(app, "3")  # go to Certificates
    await until(lambda: app.screen.SECTION == "certificates" and shown(app))
    return time.perf_counter() - started


async def search(pilot, term: str) -> float:
    app = pilot.app
    screen = app.screen
    await pilot.press("slash")  # into the search box
    screen.query_one("#search").value = term  # as if typed, without the pause
    started = time.perf_counter()
    press_now(app, "enter")  # search now
    await until(lambda: screen.search == term and not busy(app))
    elapsed = time.perf_counter() - started

    screen.query_one("#search").value = ""  # back to every certificate
    await pilot.press("slash", "enter")
    await until(lambda: screen.search == "" and not busy(app))
    return elapsed


def press_now(app, key: str) -> None:
    """The key as a terminal delivers it. Pilot's press would also wait for
    the process to look idle, in sleeps of its own, and that is not the
    operator's wait."""
    app.post_message(events.Key(key, "\r" if key == "enter" else key))


def ready(app) -> bool:
    return app.agent_up and not busy(app)


def shown(app) -> bool:
    """The Certificates table has its first page (it may not be built yet)."""
    tables = app.screen.query("#certificates")
    return bool(tables) and tables.first().row_count > 0 and not busy(app)


def busy(app) -> bool:
    return any(w.group != "feed" and not w.is_finished for w in app.workers)


async def until(check) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the console did not get there within 60 s")
        await asyncio.sleep(POLL)


def store_search_times(state_dir: Path, terms: dict[str, str]) -> dict:
    """The store's search, index against scan, in this process."""
    store = Store(state_dir / "scb.db")
    try:
        out = {}
        for label, term in terms.items():
            indexed = best_of(lambda t=term: store.list_certificates(search=t))
            scanned = best_of(lambda t=term: like_scan(store, t))
            out[label] = (indexed, scanned, store.list_certificates(search=term)[1])
        return out
    finally:
        store.close()


def like_scan(store: Store, term: str):
    """The listing before the trigram index: LIKE over every row."""
    args = (f"%{term.lower()}%", f"{term.upper()}%")
    where = "WHERE (c.names LIKE ? OR c.serial LIKE ?)"
    source = "FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial"
    store.db.execute(f"SELECT count(*) {source} {where}", args).fetchone()
    return store.db.execute(
        f"SELECT c.*, r.revoked_at, r.reason {source} {where}"
        " ORDER BY c.issued_at DESC, c.serial LIMIT 100",
        args,
    ).fetchall()


def best_of(run, times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def report(small: dict, large: dict, rows: int) -> None:
    floor = large["round trip"]
    print(f"\nadmin socket round trip (floor): {ms(floor)}")
    print(
        f"\n{'console':<26}{rows:>10,}{SMALL:>10,}{'ratio':>8}{'goal':>11}"
        f"{'admin call':>12}"
    )
    line("Certificates screen", large["screen"], small["screen"], GOALS["screen"])
    for label, seconds in large["search"].items():
        line(
            f"search: {label}",
            seconds,
            small["search"][label],
            GOALS["search"],
            large["call"][label],
        )

    print(f"\n{'store search, ' + format(rows, ',') + ' rows':<26}"
          f"{'index':>10}{'LIKE scan':>10}{'ratio':>8}{'matches':>9}")  # fmt: skip
    for label, (indexed, scanned, matches) in large["store"].items():
        print(
            f"{label:<26}{ms(indexed):>10}{ms(scanned):>10}"
            f"{indexed / scanned:>8.2f}{matches:>9,}"
        )


def line(label, large: float, small: float, goal: float, call=None) -> None:
    verdict = "ok" if large <= goal else "MISSED"
    print(
        f"{label:<26}{ms(large):>10}{ms(small):>10}{large / small:>8.2f}"
        f"{'≤ ' + ms(goal):>9} {verdict:<6}{ms(call) if call else '':>8}"
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    sys.exit(main())
