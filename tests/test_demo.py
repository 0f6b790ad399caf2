"""`scb-agent demo`, run as a user runs it: a real command in a subprocess."""

import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509

from scb_core.keys import load_private_key
from tests.helpers import assert_is_leaf, verify_with_cryptography, verify_with_openssl

NAME = "www.demo.home.arpa"
STAGES = [f"[{n}/6]" for n in range(1, 7)]


def demo_command(*args: str) -> list[str]:
    """The installed console script, as the README has users type it."""
    script = shutil.which("scb-agent")
    if script is None:
        return [sys.executable, "-m", "scb_agent.cli", "demo", *args]
    return [script, "demo", *args]


def run_demo(directory: Path, *args: str, prefix: tuple = ()):
    return subprocess.run(
        [*prefix, *demo_command("--dir", str(directory), *args)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def named_files(stdout: str) -> dict[str, Path]:
    """The `  what: path` lines under "Files"."""
    listing = stdout.split("\nFiles (all under ", 1)[1]
    found = re.findall(r"^  ([A-Za-z ]+):\s+(/\S+)$", listing, re.MULTILINE)
    return {what: Path(path) for what, path in found}


def load_chain(files: dict[str, Path]):
    leaf, *chain = x509.load_pem_x509_certificates(files["fullchain"].read_bytes())
    root = x509.load_pem_x509_certificate(files["CA root"].read_bytes())
    return leaf, chain, root


def agent_pid(stdout: str) -> int:
    return int(re.search(r"agent: scb-agent serve, pid (\d+)", stdout).group(1))


def agent_port(stdout: str) -> int:
    return int(re.search(r"JASC/1 on 127\.0\.0\.1:(\d+)", stdout).group(1))


def assert_gone(pid: int, port: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_demo_prints_every_stage_and_names_files_that_verify(tmp_path):
    result = run_demo(tmp_path / "demo")

    assert result.returncode == 0, result.stdout + result.stderr
    positions = [result.stdout.index(stage) for stage in STAGES]
    assert positions == sorted(positions)
    assert "issued serial" in result.stdout
    assert "PRIVATE KEY" not in result.stdout + result.stderr

    files = named_files(result.stdout)
    assert {"CA root", "fullchain", "privkey", "agent store"} <= set(files)
    for path in files.values():
        assert path.is_file() and path.is_relative_to(tmp_path / "demo")
    leaf, chain, root = load_chain(files)
    verify_with_cryptography(leaf, chain, root, NAME)
    assert_is_leaf(leaf, [NAME])
    key = load_private_key(files["privkey"].read_bytes())
    assert key.public_key() == leaf.public_key()
    assert files["privkey"].stat().st_mode & 0o777 == 0o600
    assert_gone(agent_pid(result.stdout), agent_port(result.stdout))


def test_demo_certificate_passes_openssl_verify(tmp_path):
    result = run_demo(tmp_path / "demo")
    assert result.returncode == 0, result.stdout + result.stderr

    leaf, chain, root = load_chain(named_files(result.stdout))
    verify_with_openssl(tmp_path, leaf, chain, root)


def test_demo_without_privileged_ports_allows_only_its_own_port(tmp_path):
    prefix: tuple = ()
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root and capsh (Debian libcap2-bin) is missing")
        prefix = (capsh, "--drop=cap_net_bind_service", "--", "-c", 'exec "$@"', "-")

    result = run_demo(tmp_path / "demo", prefix=prefix)

    assert result.returncode == 0, result.stdout + result.stderr
    port = int(re.search(r"answering on 127\.0\.0\.2:(\d+)", result.stdout).group(1))
    assert port > 1023
    assert f"challenge ports {port}-{port}," in result.stdout


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("mine")

    result = run_demo(tmp_path)

    assert result.returncode == 2
    assert str(tmp_path) in result.stderr and "not empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


class Lines:
    """A child's stdout read in a thread, so a hung demo fails the test."""

    def __init__(self, stream):
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, marker: str, timeout: float = 120) -> str:
        while True:
            line = self._queue.get(timeout=timeout)
            assert line is not None, "".join(self.seen)
            self.seen.append(line)
            if marker in line:
                return "".join(self.seen)


def suggested(stdout: str, command: str) -> tuple[dict, list[str]]:
    """The env and argv of the printed next step that runs `command`."""
    for line in stdout.splitlines():
        words = shlex.split(line)
        assignments = [w for w in words if re.match(r"^SCB_[A-Z_]+=", w)]
        argv = words[len(assignments) :]
        if assignments and " ".join(argv).startswith(command):
            return dict(w.split("=", 1) for w in assignments), argv
    raise AssertionError(f"no suggested {command!r} in:\n{stdout}")


def run_suggested(stdout: str, command: str) -> subprocess.CompletedProcess:
    env, argv = suggested(stdout, command)
    return subprocess.run(
        [sys.executable, "-m", "scb_agent.cli", *argv[1:]],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_keep_serves_the_suggested_commands_until_sigint(tmp_path):
    process = subprocess.Popen(
        demo_command("--dir", str(tmp_path / "demo"), "--keep"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout = Lines(process.stdout).until("Press Ctrl-C")
        suggested(stdout, "scb-console")

        listing = run_suggested(stdout, "scb-agent admin certificates")
        assert listing.returncode == 0, listing.stderr
        assert NAME in listing.stdout
        request = run_suggested(stdout, "scb-agent request api.demo.home.arpa")
        assert request.returncode == 0, request.stdout + request.stderr
        assert "issued serial" in request.stdout
        assert process.poll() is None

        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert_gone(agent_pid(stdout), agent_port(stdout))
