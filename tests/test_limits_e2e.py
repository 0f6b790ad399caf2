"""Rate limits, bans and connection caps against a real agent process.

Every host here is 127.0.0.1 (a few tests also dial from 127.0.0.2 and
127.0.0.3), so each test starts an agent of its own with the limits it
needs: the shipped defaults, or small ones that a handful of requests reach.
"""

import asyncio
import json
import re
from dataclasses import asdict

import pytest

from scb_agent.client import ClientConversation, tls_context
from scb_core.config import Limits
from scb_core.errors import ScbError
from scb_tui.link import AgentLink
from tests.lab import Agent, DnsThread, Host

SHIPPED = asdict(Limits())
GOOD = "127.0.0.2"  # not 127.0.0.1: policy refuses the agent's own address


@pytest.fixture
def dns():
    responder = DnsThread({}).start()
    yield responder
    responder.stop()


def start_lab(tmp_path, dns, **limits) -> tuple[Agent, Host]:
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.configure("limits", **{**SHIPPED, **limits})
    agent.start()
    return agent, Host(tmp_path / "host", agent)


@pytest.fixture
def stop_after():
    agents: list[Agent] = []
    yield agents.append
    for agent in agents:
        agent.stop()


def issued(result) -> bool:
    return result.returncode == 0 and "issued serial" in result.stdout


def refusal(result, code: str) -> int | None:
    """Assert the request failed with `code`; its retry_after, if it had one."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error {code}:" in result.stderr, result.stderr
    found = re.search(r"\(retry after (\d+) s\)", result.stderr)
    return int(found.group(1)) if found else None


def admin_json(agent: Agent, *args: str):
    return json.loads(agent.admin(*args, "--json").stdout)


def audit_of(agent: Agent, request_id: str | None = None) -> list[dict]:
    rows = admin_json(agent, "audit", "--limit", "500")[::-1]  # oldest first
    if request_id is None:
        return rows
    return [row for row in rows if row["request_id"] == request_id]


def test_sixth_failed_validation_is_banned_until_unban_even_across_a_restart(
    tmp_path, dns, stop_after
):
    agent, host = start_lab(tmp_path, dns)
    stop_after(agent)
    dns.records["good.home.arpa"] = [GOOD]

    # Names nobody resolves fail validation; each is a different name, so
    # only the per-address limit (5 an hour) is reached, not a per-name one.
    for n in range(5):
        assert refusal(host.request(f"nowhere{n}.home.arpa"), "dns_failed") is None

    wait = refusal(host.request("good.home.arpa"), "banned")
    assert wait is not None and 3500 < wait <= 3600

    [ban] = admin_json(agent, "bans")
    assert (ban["kind"], ban["value"], ban["actor"], ban["strikes"]) == (
        "address",
        "127.0.0.1",
        "agent",
        1,
    )
    assert ban["expires_at"] - ban["created_at"] == pytest.approx(3600)
    assert ban["lifted_at"] is None
    assert set(ban) == {
        "id", "kind", "value", "strikes", "reason", "actor", "created_at",
        "expires_at", "lifted_at",
    }  # fmt: skip
    table = agent.admin("bans").stdout
    assert "127.0.0.1" in table and "address" in table and "5 failed" in table

    agent.stop()
    agent.start()
    assert refusal(host.request("good.home.arpa"), "banned") is not None
    assert [b["id"] for b in admin_json(agent, "bans")] == [ban["id"]]

    lifted = agent.admin("unban", "127.0.0.1").stdout
    assert f"lifted ban {ban['id']}" in lifted
    assert admin_json(agent, "bans") == []
    assert issued(host.request("good.home.arpa"))

    events = [row["event"] for row in audit_of(agent)]
    assert events.count("refused") >= 7  # five dns_failed and two banned
    for event in ("received", "stage", "banned", "unbanned", "issued"):
        assert event in events
    [banned] = [row for row in audit_of(agent) if row["event"] == "banned"]
    assert banned["peer"] == "127.0.0.1" and banned["actor"] == "agent"


def test_requests_and_certificates_per_name_set_are_limited_and_remembered(
    tmp_path, dns, stop_after
):
    agent, host = start_lab(
        tmp_path,
        dns,
        requests_per_address_per_hour=4,
        certificates_per_name_set_per_week=1,
    )
    stop_after(agent)
    for name in ("x", "y", "z", "w"):
        dns.records[f"{name}.home.arpa"] = [GOOD]

    assert issued(host.request("x.home.arpa"))
    again = host.request("x.home.arpa")
    assert refusal(again, "rate_limited") == 7 * 24 * 3600
    assert "limits.certificates_per_name_set_per_week = 1 per week" in again.stderr
    assert issued(host.request("y.home.arpa", "x.home.arpa"))  # another set
    assert issued(host.request("z.home.arpa"))

    over = host.request("w.home.arpa")
    assert 0 < refusal(over, "rate_limited") <= 900
    assert "too many requests from 127.0.0.1" in over.stderr
    assert "limits.requests_per_address_per_hour = 4 per hour" in over.stderr

    agent.stop()
    agent.start()
    assert refusal(host.request("w.home.arpa"), "rate_limited") is not None
    limited = [row for row in audit_of(agent) if row["event"] == "limited"]
    assert len(limited) == 3
    assert all(row["peer"] == "127.0.0.1" for row in limited)


def test_a_name_that_keeps_failing_is_paused_before_any_dns(
    tmp_path, dns, stop_after
):
    agent, host = start_lab(
        tmp_path, dns, failures_per_address_per_hour=100, failures_per_name_per_hour=2
    )
    stop_after(agent)

    for _ in range(2):
        refusal(host.request("flaky.home.arpa"), "dns_failed")
    dns.records["flaky.home.arpa"] = [GOOD]
    dns.records["steady.home.arpa"] = [GOOD]

    paused = host.request("flaky.home.arpa")
    assert 3500 < refusal(paused, "banned") <= 3600
    assert "name flaky.home.arpa is paused" in paused.stderr
    assert issued(host.request("steady.home.arpa"))  # the address is not banned

    [pause] = admin_json(agent, "bans")
    assert (pause["kind"], pause["value"]) == ("name", "flaky.home.arpa")
    [last] = [r for r in admin_json(agent, "requests") if r["error_code"] == "banned"]
    stages = [row["detail"] for row in audit_of(agent, last["id"])]
    assert "resolving" not in stages  # refused before a single DNS query

    agent.admin("unban", str(pause["id"]))
    assert issued(host.request("flaky.home.arpa"))


def test_operator_bans_by_address_network_and_name_for_a_time_or_for_ever(
    tmp_path, dns, stop_after
):
    agent, host = start_lab(tmp_path, dns)
    stop_after(agent)
    dns.records["printer.home.arpa"] = [GOOD]

    said = agent.admin("ban", "printer.home.arpa", "--for", "2h", "--reason", "odd")
    assert "name printer.home.arpa until" in said.stdout
    agent.admin("ban", "127.0.0.0/8", "--reason", "lab is closed")
    bad = agent.admin("ban", "10.0.0.0/33", check=False)
    assert bad.returncode == 1 and "'10.0.0.0/33'" in bad.stderr
    bad = agent.admin("ban", "10.0.0.1", "--for", "soon", check=False)
    assert bad.returncode == 1 and "duration 'soon'" in bad.stderr

    bans = {b["value"]: b for b in admin_json(agent, "bans")}
    assert bans["printer.home.arpa"]["expires_at"] - bans["printer.home.arpa"][
        "created_at"
    ] == pytest.approx(7200)
    assert bans["127.0.0.0/8"]["kind"] == "network"
    assert bans["127.0.0.0/8"]["expires_at"] is None
    assert bans["127.0.0.0/8"]["actor"] == bans["printer.home.arpa"]["actor"]

    forever = host.request("printer.home.arpa")
    assert refusal(forever, "banned") is None  # waiting does not help
    assert "lab is closed" in forever.stderr

    agent.admin("unban", "127.0.0.0/8")
    assert refusal(host.request("printer.home.arpa"), "banned") > 7000
    missing = agent.admin("unban", "127.0.0.0/8", check=False)
    assert missing.returncode == 1 and "no active ban" in missing.stderr


async def hold(agent: Agent, source: str) -> ClientConversation:
    """A TLS connection to the agent from `source`, saying nothing."""
    root = (agent.state_dir / "ca" / "root.pem").read_text()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        agent.port,
        ssl=tls_context(root),
        server_hostname="127.0.0.1",
        local_addr=(source, 0),
    )
    return ClientConversation(reader, writer)


async def refused_connection(agent: Agent, source: str) -> ScbError:
    conversation = await hold(agent, source)
    try:
        with pytest.raises(ScbError) as info:
            await conversation.next_event(timeout=60)
        return info.value
    finally:
        await conversation.close()


async def until_open(agent: Agent, count: int) -> None:
    """The agent counts a connection once its handshake is done: wait for it."""
    for _ in range(600):
        status = await asyncio.to_thread(agent.call, "status")
        if status["connections"] == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the agent never had {count} connections open")


def test_connections_are_capped_per_address_and_overall(tmp_path, dns, stop_after):
    agent = Agent(tmp_path / "agent", [dns.address])
    agent.configure("limits", connections_per_address=2, connections_total=3)
    agent.configure("timeouts", message=300.0)  # held connections stay put
    stop_after(agent.start())

    async def scenario():
        held = [await hold(agent, "127.0.0.1") for _ in range(2)]
        await until_open(agent, 2)
        per_address = await refused_connection(agent, "127.0.0.1")

        held.append(await hold(agent, "127.0.0.2"))
        await until_open(agent, 3)
        overall = await refused_connection(agent, "127.0.0.3")

        for conversation in held:
            await conversation.close()
        await until_open(agent, 0)
        return per_address, overall

    per_address, overall = asyncio.run(scenario())

    assert per_address.code == "rate_limited" and per_address.retry_after >= 1
    assert "limits.connections_per_address = 2" in per_address.message
    assert overall.code == "rate_limited"
    assert "limits.connections_total = 3" in overall.message

    dns.records["after.home.arpa"] = [GOOD]
    assert issued(Host(tmp_path / "host", agent).request("after.home.arpa"))
    limited = [row["peer"] for row in audit_of(agent) if row["event"] == "limited"]
    assert limited == ["127.0.0.1", "127.0.0.3"]


def test_the_consoles_ban_and_unban_calls_reach_the_event_feed(
    tmp_path, dns, stop_after
):
    """The console's bans screen calls exactly this, and reloads on the feed."""
    agent = Agent(tmp_path / "agent", [dns.address])
    stop_after(agent.start())
    link = AgentLink(agent.admin_socket)

    async def scenario():
        feed = link.feed()
        assert (await anext(feed))["event"] == "connected"
        ban = await link.call(
            "ban", actor="alice", value="10.7.0.0/16", reason="guest Wi-Fi",
            **{"for": "30m"},
        )  # fmt: skip
        rows = await link.call("bans")
        await link.call("unban", id_or_value=str(ban["id"]))
        changes = [await asyncio.wait_for(anext(feed), 30) for _ in range(2)]
        await feed.aclose()
        return ban, rows, changes

    ban, rows, (banned, unbanned) = asyncio.run(scenario())

    assert rows == [ban]
    assert (ban["kind"], ban["value"], ban["actor"]) == (
        "network",
        "10.7.0.0/16",
        "alice",
    )
    assert ban["expires_at"] - ban["created_at"] == pytest.approx(1800)
    assert (banned["event"], banned["value"], banned["reason"]) == (
        "banned",
        "10.7.0.0/16",
        "guest Wi-Fi",
    )
    assert (unbanned["event"], unbanned["id"]) == ("unbanned", ban["id"])
    audit = [(row["event"], row["actor"]) for row in audit_of(agent)]
    assert ("banned", "alice") in audit and ("unbanned", "operator") in audit
