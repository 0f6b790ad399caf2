"""Deploy hooks: what runs, in which order, with which environment, and how a
hook that fails or hangs is reported. Real processes, real files."""

import math
import time
from pathlib import Path

import pytest

from scb_agent.hooks import checked_timeout, hooks_dir, run_deploy_hooks
from scb_agent.lineage import Lineage, RenewalSettings
from scb_core.errors import ConfigError

NAMES = ["web.home.arpa", "www.home.arpa"]


def settings(hook: str = "") -> RenewalSettings:
    return RenewalSettings(names=NAMES, server="ca:8443", deploy_hook=hook)


def script(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def record(log: Path, label: str) -> str:
    return (
        f'echo "{label}|$SCB_LINEAGE|$SCB_DOMAINS|$RENEWED_LINEAGE|$RENEWED_DOMAINS"'
        f" >> {log}"
    )


def test_the_lineage_hook_runs_first_then_the_directory_in_name_order(tmp_path):
    lineage = Lineage(tmp_path, NAMES[0])
    log = tmp_path / "log"
    hooks = hooks_dir(tmp_path)
    script(hooks, "20-second", record(log, "20"))
    script(hooks, "10-first", record(log, "10"))
    script(hooks, "README", "echo never", mode=0o644)  # not executable
    script(hooks, ".hidden", record(log, "hidden"))

    failures = run_deploy_hooks(lineage, settings(record(log, "own")))

    assert failures == []
    live, domains = str(lineage.live_dir), " ".join(NAMES)
    assert log.read_text().splitlines() == [
        f"{label}|{live}|{domains}|{live}|{domains}" for label in ("own", "10", "20")
    ]
    assert hooks == tmp_path / "renewal-hooks" / "deploy"


def test_a_failing_hook_is_reported_and_the_others_still_run(tmp_path):
    lineage = Lineage(tmp_path, NAMES[0])
    log = tmp_path / "log"
    script(hooks_dir(tmp_path), "10-broken", "exit 7")
    script(hooks_dir(tmp_path), "20-fine", record(log, "20"))

    failures = run_deploy_hooks(lineage, settings("false"))

    assert [str(f) for f in failures] == [
        "deploy hook false failed with exit status 1",
        "deploy hook 10-broken failed with exit status 7",
    ]
    assert log.read_text().startswith("20|")


def test_a_hook_that_outlives_its_timeout_is_killed_with_its_children(tmp_path):
    lineage = Lineage(tmp_path, NAMES[0])
    pid_file = tmp_path / "child.pid"
    hook = f"sleep 300 & echo $! > {pid_file}; wait"

    # Long enough for a loaded machine to start the shell and write the pid.
    failures = run_deploy_hooks(lineage, settings(hook), timeout=3)

    assert [str(f) for f in failures] == [f"deploy hook {hook} was killed after 3 s"]
    assert _ends(int(pid_file.read_text()))


def test_a_hook_killed_by_a_signal_says_which(tmp_path):
    lineage = Lineage(tmp_path, NAMES[0])

    failures = run_deploy_hooks(lineage, settings("kill -TERM $$"))

    assert [str(f) for f in failures] == [
        "deploy hook kill -TERM $$ was killed by signal 15"
    ]


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan, math.inf])
def test_a_hook_timeout_that_cannot_work_is_refused(seconds):
    with pytest.raises(ConfigError, match="--hook-timeout"):
        checked_timeout(seconds)


def test_no_hook_timeout_means_the_default():
    assert checked_timeout(None) == 300.0
    assert checked_timeout(2.5) == 2.5


def _ends(pid: int) -> bool:
    """Whether `pid` dies: SIGKILL is delivered when the kernel next runs it."""
    deadline = time.monotonic() + 30
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for an init that may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
