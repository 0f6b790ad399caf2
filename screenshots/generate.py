"""Regenerate the console's screenshots in this directory, one SVG per screen.

    python screenshots/generate.py

The console runs headless against the fake agent of the snapshot tests
(tests/console_fake.py): fixed, realistic data, so the pictures change only
when the console does. Each shot is the keys an operator presses to get there.
"""

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for `tests`, when run as a script

from scb_tui.app import ConsoleApp  # noqa: E402
from tests.console_fake import FakeAgentLink, settle  # noqa: E402

WIDE = (120, 40)
NARROW = (80, 24)

# name: (terminal size, keys pressed, what it shows)
SHOTS = {
    "overview": (WIDE, [], "the agent, its CA, counts and the live feed"),
    "requests": (WIDE, ["2", "down"], "requests at their live stage"),
    "requests-80x24": (NARROW, ["2", "down"], "the same over a small SSH window"),
    "approve": (NARROW, ["2", "down", "a"], "approving a request"),
    "certificates": (WIDE, ["3"], "issued certificates, a page at a time"),
    "search": (NARROW, ["3", "slash", *"camera", "enter"], "searching"),
    "certificate": (WIDE, ["3", "enter"], "one certificate: X.509 fields, PEM"),
    "revoke": (WIDE, ["3", "r"], "revoking with an RFC 5280 reason"),
    "bans": (WIDE, ["4"], "active bans"),
    "audit": (WIDE, ["5"], "the audit log"),
    "help": (NARROW, ["2", "question_mark"], "every key of the screen"),
    "agent-down": (NARROW, ["2"], "what the console says with no agent"),
}


async def shoot(name: str, size: tuple[int, int], keys: list[str]) -> Path:
    app = ConsoleApp(FakeAgentLink(up=name != "agent-down"))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        svg = app.export_screenshot(title=f"scb-console · {name}")
    path = HERE / f"{name}.svg"
    path.write_text(svg)
    return path


async def main() -> None:
    for name, (size, keys, what) in SHOTS.items():
        path = await shoot(name, size, keys)
        print(f"{path.name:<22} {size[0]}x{size[1]}  {what}")


if __name__ == "__main__":
    asyncio.run(main())
