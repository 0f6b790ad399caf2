"""`scb-agent units`: the systemd units shipped in the package.

Printed by default, so an operator can read them before trusting them;
`--install DIR` writes them (usually to /etc/systemd/system). The shipped
files say `ExecStart=scb-agent …`; both ways of output point that at the
`scb-agent` actually installed next to this Python, because a venv or pipx
install lies outside the fixed search path systemd uses for bare names.
"""

import shutil
import sys
from importlib import resources
from pathlib import Path

from scb_core.errors import ConfigError
from scb_core.files import write_atomic

UNITS = ("scb-agent.service", "scb-renew.service", "scb-renew.timer")
_EXEC_PREFIX = "ExecStart=scb-agent "


def run_units(args, paths) -> int:
    executable = args.executable or installed_executable()
    units = {name: unit_text(name, executable) for name in UNITS}

    if args.install is None:
        for name, text in units.items():
            print(f"# --- {name} ---")
            print(text)
        return 0

    target = Path(args.install)
    if not target.is_dir():
        raise ConfigError(f"--install {target}: not a directory")
    for name, text in units.items():
        write_atomic(target / name, text.encode())
        print(f"wrote {target / name}")
    print("then: systemctl daemon-reload && systemctl enable --now scb-renew.timer")
    return 0


def unit_text(name: str, executable: str) -> str:
    """One shipped unit, its ExecStart pointing at `executable`."""
    text = resources.files("scb_agent").joinpath("units", name).read_text()
    return text.replace(_EXEC_PREFIX, f"ExecStart={executable} ")


def installed_executable() -> str:
    """This installation's `scb-agent` script, else whatever PATH finds."""
    beside_python = Path(sys.executable).parent / "scb-agent"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("scb-agent") or "scb-agent"
