"""Manual approval against a real agent: approve, deny, and nobody deciding.

The host's `scb-agent request` runs in the background, as it would on a real
host, while the operator's `scb-agent admin` commands decide on it.
"""

import json
import subprocess
import sys
import time

import pytest

from tests.lab import Agent, DnsThread, Host, free_port

GOOD = "127.0.0.2"  # not 127.0.0.1: policy refuses the agent's own address


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("approval")
    dns = DnsThread({}).start()
    agent = Agent(root / "agent", [dns.address], "--approval", "manual")
    agent.start()
    try:
        yield agent, Host(root / "host", agent), dns
    finally:
        agent.stop()
        dns.stop()


def start_request(host: Host, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scb_agent.cli", "request", name,
         "--challenge-port", str(free_port())],
        env=host.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def awaiting(agent: Agent, name: str, process: subprocess.Popen) -> dict:
    """The pending request for `name`, once it waits for an operator."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        rows = json.loads(agent.admin("requests", "--pending", "--json").stdout)
        for row in rows:
            if row["names"] == [name] and row["stage"] == "awaiting_approval":
                return row
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{name} never reached awaiting_approval")


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def audit_of(agent: Agent, request_id: str) -> list[dict]:
    rows = json.loads(agent.admin("audit", "--json", "--limit", "500").stdout)
    return [row for row in rows[::-1] if row["request_id"] == request_id]


def test_approved_request_is_issued_and_every_step_is_audited(lab):
    agent, host, dns = lab
    dns.records["approve.home.arpa"] = [GOOD]
    process = start_request(host, "approve.home.arpa")

    request = awaiting(agent, "approve.home.arpa", process)
    said = agent.admin("approve", request["id"]).stdout
    code, out, err = finished(process)

    assert said.strip() == f"request {request['id']} approved"
    assert code == 0, out + err
    assert "awaiting_approval" in out  # the host saw the stage
    assert "issued serial" in out
    steps = [(row["event"], row["detail"]) for row in audit_of(agent, request["id"])]
    assert [event for event, _ in steps] == [
        "received", "stage", "stage", "stage", "approved", "stage", "issued",
    ]  # fmt: skip
    assert [detail for event, detail in steps if event == "stage"] == [
        "resolving",
        "connecting",
        "awaiting_approval",
        "signing",
    ]
    approved = audit_of(agent, request["id"])[4]
    assert approved["actor"] not in ("agent", "host")
    assert approved["names"] == "approve.home.arpa"
    assert approved["peer"] == "127.0.0.1"


def test_denied_request_fails_with_the_operators_reason(lab):
    agent, host, dns = lab
    dns.records["deny.home.arpa"] = [GOOD]
    process = start_request(host, "deny.home.arpa")

    request = awaiting(agent, "deny.home.arpa", process)
    agent.admin("deny", request["id"], "--reason", "not a lab host")
    code, out, err = finished(process)

    assert code == 1
    assert "error denied:" in err and "not a lab host" in err
    assert not host.live("deny.home.arpa").exists()
    events = [(row["event"], row["detail"]) for row in audit_of(agent, request["id"])]
    assert ("denied", "not a lab host") in events
    assert events[-1][0] == "refused" and events[-1][1].startswith("denied:")
    again = agent.admin("approve", request["id"], check=False)
    assert again.returncode == 1 and "not awaiting approval" in again.stderr


def test_a_request_nobody_decides_on_times_out(tmp_path):
    dns = DnsThread({"late.home.arpa": [GOOD]}).start()
    agent = Agent(tmp_path / "agent", [dns.address], "--approval", "manual")
    agent.configure(approval_timeout=1)
    agent.start()
    try:
        result = Host(tmp_path / "host", agent).request("late.home.arpa")
        [row] = json.loads(agent.admin("requests", "--json").stdout)
    finally:
        agent.stop()
        dns.stop()

    assert result.returncode == 1
    assert "error timeout: no operator decided within 1 s" in result.stderr
    assert "awaiting_approval" in result.stdout
    assert (row["stage"], row["error_code"]) == ("failed", "timeout")


def test_stopping_the_agent_ends_a_wait_for_approval_at_once(tmp_path):
    dns = DnsThread({"waiting.home.arpa": [GOOD]}).start()
    agent = Agent(tmp_path / "agent", [dns.address], "--approval", "manual")
    agent.start()
    try:
        host = Host(tmp_path / "host", agent)
        process = start_request(host, "waiting.home.arpa")
        awaiting(agent, "waiting.home.arpa", process)
        status = agent.stop()  # SIGTERM; the lab kills it if it will not stop
        code, _, err = finished(process)
    finally:
        agent.stop()
        dns.stop()

    assert status == 0  # stopped by itself, not killed 20 s later
    assert code == 1
    assert "the agent stopped before an operator decided" in err
