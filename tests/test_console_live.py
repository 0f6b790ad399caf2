"""The console against a real agent: a child process, its own CA, real hosts.

Every test drives `ConsoleApp` with Pilot exactly as an operator would, one
key at a time, and checks the outcome where it lands: the host's exit code
and files, the agent's store (over the admin socket) and its published CRL.
Waits poll with a generous deadline, so a slow machine only makes them slower.
"""

import asyncio
import subprocess
import sys

import pytest
from cryptography import x509
from textual.geometry import Region
from textual.widgets import DataTable

from scb_agent.admin_client import AdminClient
from scb_tui.app import ConsoleApp
from scb_tui.chrome import AgentBanner
from scb_tui.formatting import when
from scb_tui.link import AgentLink
from tests.lab import Agent, DnsThread, Host, free_port

DEADLINE = 60.0
MANUAL = "manual.home.arpa"  # names under it wait for an operator


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    dns = DnsThread({}).start()
    agent = Agent(root / "agent", [dns.address])
    agent.configure(manual_approval_domains=[MANUAL])
    agent.start()
    try:
        yield agent, Host(root / "host", agent), dns
    finally:
        agent.stop()
        dns.stop()


def console(agent: Agent) -> ConsoleApp:
    return ConsoleApp(AgentLink(agent.admin_socket))


def start_request(lab, name: str) -> subprocess.Popen:
    """`scb-agent request NAME` on the host, left running in the background."""
    agent, host, dns = lab
    # Not 127.0.0.1: the agent listens there, and policy refuses its own address.
    dns.records[name] = ["127.0.0.2"]
    return subprocess.Popen(
        [sys.executable, "-m", "scb_agent.cli", "request", name]
        + ["--challenge-port", str(free_port())],
        env=host.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


async def finished(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = await asyncio.to_thread(process.communicate, timeout=DEADLINE)
    return process.returncode, output


async def wait_until(pilot, what: str, check):
    """Let the console run until `check()` is truthy; fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if result := check():
            return result
        await pilot.pause(0.05)
    raise AssertionError(f"gave up waiting for {what}")


async def call(agent: Agent, name: str, **args):
    async with AdminClient(agent.admin_socket) as client:
        return await client.call(name, **args)


def request_named(screen, name: str) -> dict | None:
    return next((r for r in screen.requests.values() if r["names"] == [name]), None)


def stage_cell(screen, request_id: str) -> str:
    table = screen.query_one("#requests", DataTable)
    return str(table.get_row(request_id)[3])


async def select_row(pilot, table: DataTable, key: str) -> None:
    """Walk the cursor to the row with `key`, by arrow keys."""
    table.focus()
    await pilot.press("ctrl+home")
    for _ in range(table.get_row_index(key)):
        await pilot.press("down")
    assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == key


async def awaiting_approval(pilot, lab, name: str) -> tuple[dict, subprocess.Popen]:
    """Go to Requests, make a request for `name`, and watch it arrive."""
    await pilot.press("2")  # go to Requests before the host asks
    await wait_until(pilot, "the agent to connect", lambda: pilot.app.agent_up)
    process = start_request(lab, name)
    screen = pilot.app.screen

    def waiting() -> dict | None:
        request = request_named(screen, name)
        if not request or request["stage"] != "awaiting_approval":
            return None
        # The table redraws once a burst of events is in: wait for what the
        # operator sees, not just the model behind it.
        table = screen.query_one("#requests", DataTable)
        shown = request["id"] in table.rows and stage_cell(screen, request["id"])
        return request if shown == "awaiting approval" else None

    request = await wait_until(pilot, f"{name} to await approval", waiting)
    return request, process


async def test_request_arrives_live_moves_through_stages_and_is_approved(lab):
    name = f"approve.{MANUAL}"
    app = console(lab[0])
    async with app.run_test(size=(120, 40)) as pilot:
        request, process = await awaiting_approval(pilot, lab, name)
        screen = app.screen
        assert stage_cell(screen, request["id"]) == "awaiting approval"

        table = screen.query_one("#requests", DataTable)
        await select_row(pilot, table, request["id"])
        await wait_until(
            pilot,
            "the request's stages in the detail panel",
            lambda: "awaiting approval" in _detail_text(screen),
        )
        detail = _detail_text(screen)
        assert "received" in detail and "resolving" in detail
        assert detail.index("resolving") < detail.index("connecting")

        await pilot.press("a")  # approve the selected request
        await pilot.press("y")  # yes, approve it
        await wait_until(
            pilot,
            "the request to be issued",
            lambda: stage_cell(screen, request["id"]) == "issued",
        )

    code, output = await finished(process)
    assert code == 0, output
    assert (lab[1].live(name) / "cert.pem").exists()
    [approved] = await call(lab[0], "audit", search="approved")
    assert approved["request_id"] == request["id"]


async def test_deny_with_a_reason_reaches_the_host(lab):
    name = f"deny.{MANUAL}"
    app = console(lab[0])
    async with app.run_test(size=(120, 40)) as pilot:
        request, process = await awaiting_approval(pilot, lab, name)
        screen = app.screen
        await select_row(pilot, screen.query_one("#requests", DataTable), request["id"])

        await pilot.press("d")  # deny the selected request: the reason prompt opens
        await pilot.press(*"not a lab host")  # why, for the host's operator
        await pilot.press("enter")  # deny it
        await wait_until(
            pilot,
            "the request to fail",
            lambda: stage_cell(screen, request["id"]) == "failed",
        )
        assert screen.requests[request["id"]]["error_code"] == "denied"

    code, output = await finished(process)
    assert code != 0
    assert "denied" in output and "not a lab host" in output
    assert not (lab[1].live(name) / "cert.pem").exists()


async def test_revoke_from_the_console_lands_in_the_published_crl(lab):
    agent, host, dns = lab
    name = "revoke-from-console.home.arpa"
    code, output = await finished(start_request(lab, name))
    assert code == 0, output
    leaf = x509.load_pem_x509_certificate((host.live(name) / "cert.pem").read_bytes())

    app = console(agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")  # go to Certificates
        await pilot.press("slash")  # search
        await pilot.press(*name)  # for the certificate's name
        await pilot.press("enter")  # search now and go back to the table
        screen = app.screen
        [row] = await wait_until(
            pilot,
            f"a search for {name} to answer",
            lambda: screen.search == name and list(screen.rows.values()),
        )
        assert int(row["serial"], 16) == leaf.serial_number

        await pilot.press("r")  # revoke it: the reason picker opens
        await pilot.press("down")  # superseded
        await pilot.press("enter")  # choose it: the confirmation opens
        await pilot.press("y")  # yes, revoke it
        await wait_until(
            pilot,
            "the row to show it revoked",
            lambda: screen.rows.get(row["serial"], {}).get("status") == "revoked",
        )

    crl = x509.load_der_x509_crl((agent.state_dir / "public" / "crl.der").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.superseded


async def test_lift_a_ban_from_the_console(lab):
    agent = lab[0]
    agent.admin("ban", "10.66.0.9")
    app = console(agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")  # go to Bans
        screen = app.screen
        ban = await wait_until(
            pilot,
            "the ban to be listed",
            lambda: next(
                (b for b in screen.bans.values() if b["value"] == "10.66.0.9"), None
            ),
        )
        table = screen.query_one("#bans", DataTable)
        await select_row(pilot, table, str(ban["id"]))

        await pilot.press("u")  # lift the selected ban: the confirmation opens
        await pilot.press("y")  # yes, lift it
        await wait_until(
            pilot,
            "the ban to leave the table",
            lambda: str(ban["id"]) not in screen.bans,
        )

    assert "10.66.0.9" not in [b["value"] for b in await active_bans(agent)]


async def test_add_a_ban_from_the_console(lab):
    agent = lab[0]
    app = console(agent)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")  # go to Bans
        await wait_until(pilot, "the agent to connect", lambda: app.agent_up)
        await pilot.press("b")  # add a ban: the form opens
        await pilot.press(*"10.77.0.0/24", "enter")  # what
        await pilot.press(*"1h", "enter")  # for how long
        await pilot.press(*"noisy scanner", "enter")  # why: adds it
        screen = app.screen
        await wait_until(
            pilot,
            "the new ban to be listed",
            lambda: any(b["value"] == "10.77.0.0/24" for b in screen.bans.values()),
        )

    [ban] = [b for b in await active_bans(agent) if b["value"] == "10.77.0.0/24"]
    assert ban["kind"] == "network" and ban["reason"] == "noisy scanner"
    assert ban["expires_at"] is not None


async def active_bans(agent: Agent) -> list[dict]:
    result = await call(agent, "bans")
    return result["rows"] if isinstance(result, dict) else result


def _detail_text(screen) -> str:
    return shown(screen.query_one("#request-detail"))


def shown(widget) -> str:
    """The text a widget puts on the screen, line by line."""
    lines = widget.render_lines(Region(0, 0, *widget.size))
    return "\n".join(line.text for line in lines)


async def test_console_says_the_agent_is_down_and_reconnects(tmp_path):
    dns = DnsThread({}).start()
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.start()
    app = console(agent)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            banner = app.screen.query_one(AgentBanner)
            await wait_until(pilot, "the agent to connect", lambda: app.agent_up)
            assert not banner.display

            await asyncio.to_thread(agent.stop)
            await wait_until(pilot, "the console to notice", lambda: banner.display)
            assert app.agent_up is False
            assert "The agent is not running" in shown(banner)
            assert "agent down" in shown(app.screen.query_one("NavBar"))

            await asyncio.to_thread(agent.start)
            await wait_until(pilot, "the console to reconnect", lambda: app.agent_up)
            assert not banner.display
            status = await call(agent, "status")
            up_since = when(status["started_at"], seconds=True)
            card = app.screen.query_one("#agent-card")
            await wait_until(
                pilot,
                "the overview to show the restarted agent",
                lambda: up_since in shown(card),
            )
    finally:
        agent.stop()
        dns.stop()
