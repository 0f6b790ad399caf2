"""Deploy hooks: tell nginx (or anything) that a lineage has new files.

After every successful issuance or renewal, two kinds of hook run:

1. the lineage's own `deploy_hook` (from `request --deploy-hook`), a shell
   command line, as certbot runs it;
2. every executable in `renewal-hooks/deploy/` next to `renewal/`, in name
   order, run directly. Files without the execute bit are skipped with a
   warning, so a README or a disabled hook can sit there.

Each gets `SCB_LINEAGE` (the live dir) and `SCB_DOMAINS` (the names, space
separated), plus certbot's `RENEWED_LINEAGE` and `RENEWED_DOMAINS` so that
existing certbot hooks work unchanged. A hook runs in its own process group
and is killed with that group when it outlives its timeout. A failing hook is
reported and changes nothing else: the new files stay live.
"""

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scb_core.errors import ConfigError

from .lineage import Lineage, RenewalSettings

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class HookFailure:
    hook: str
    reason: str

    def __str__(self) -> str:
        return f"deploy hook {self.hook} {self.reason}"


def checked_timeout(seconds: float | None) -> float:
    """--hook-timeout, or the default when it is not given."""
    if seconds is None:
        return DEFAULT_TIMEOUT
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise ConfigError(f"--hook-timeout {seconds:g}: must be a positive number")
    return seconds


def hooks_dir(base: Path) -> Path:
    return base / "renewal-hooks" / "deploy"


def run_deploy_hooks(
    lineage: Lineage, settings: RenewalSettings, timeout: float = DEFAULT_TIMEOUT
) -> list[HookFailure]:
    """Run the lineage's hook, then the directory's; return what failed."""
    env = hook_environment(lineage, settings.names)
    command = settings.deploy_hook
    failures = []
    if command:
        failures += _run(command, [command], True, env, timeout)
    for path in _directory_hooks(hooks_dir(lineage.base)):
        failures += _run(path.name, [str(path)], False, env, timeout)
    return failures


def hook_environment(lineage: Lineage, names: list[str]) -> dict[str, str]:
    live, domains = str(lineage.live_dir), " ".join(names)
    return dict(
        os.environ,
        SCB_LINEAGE=live,
        SCB_DOMAINS=domains,
        RENEWED_LINEAGE=live,
        RENEWED_DOMAINS=domains,
    )


def _directory_hooks(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []

    hooks = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if not os.access(path, os.X_OK):
            logger.warning("skipping deploy hook %s: not executable", path)
            continue
        hooks.append(path)
    return hooks


def _run(
    label: str, argv: list[str], shell: bool, env: dict, timeout: float
) -> list[HookFailure]:
    # Output is not captured: a hook that leaves a daemon holding the pipe open
    # would otherwise keep us waiting. It goes to our stdout, or the journal.
    logger.info("running deploy hook %s", label)
    sys.stdout.flush()
    process = subprocess.Popen(
        argv[0] if shell else argv,
        shell=shell,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed as one
    )
    try:
        returncode = process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return [HookFailure(label, f"was killed after {timeout:g} s")]

    if returncode < 0:
        return [HookFailure(label, f"was killed by signal {-returncode}")]
    if returncode != 0:
        return [HookFailure(label, f"failed with exit status {returncode}")]
    return []
