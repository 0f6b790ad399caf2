"""`scb-console`: the operator's window into the CA, over the admin socket.

The app owns the link to the agent and its event feed; screens (one per file
under `screens/`) load what they show in workers and follow the feed through
the `agent_events` signal. The console never opens the CA key or the store.
"""

import argparse
import asyncio
import logging
from collections.abc import Iterable
from functools import partial

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal

from scb_agent.admin_client import AgentUnavailable
from scb_core.errors import ScbError
from scb_core.paths import resolve_paths

from .chrome import SECTIONS
from .link import AgentLink
from .screens.audit import AuditScreen
from .screens.bans import BansScreen
from .screens.certificates import CertificatesScreen
from .screens.help import HelpScreen
from .screens.overview import OverviewScreen
from .screens.requests import RequestsScreen

logger = logging.getLogger(__name__)

RECONNECT_DELAY = 2.0


class ConsoleApp(App):
    TITLE = "SCB console"
    CSS_PATH = "console.tcss"
    MODES = {
        "overview": OverviewScreen,
        "requests": RequestsScreen,
        "certificates": CertificatesScreen,
        "bans": BansScreen,
        "audit": AuditScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        *(
            Binding(key, f"switch_mode('{mode}')", title, show=False, id=f"go.{mode}")
            for key, mode, title in SECTIONS
        ),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    agent_up: reactive[bool | None] = reactive(None)

    def __init__(self, link: AgentLink):
        super().__init__()
        self.link = link
        self.agent_events: Signal[dict] = Signal(self, "agent-events")

    def on_mount(self) -> None:
        self.follow_agent()

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def follow_agent(self) -> None:
        """Relay the event feed to the screens; reconnect whenever it breaks."""
        while True:
            try:
                async for event in self.link.feed():
                    if event["event"] == "overflow":
                        break  # we fell behind: subscribe again and reload
                    if event["event"] == "connected":
                        self.agent_up = True
                    self.agent_events.publish(event)
            except (AgentUnavailable, ValueError) as exc:
                logger.debug("event feed lost: %s", exc)
                self.agent_up = False
            if not self.agent_up:
                await asyncio.sleep(RECONNECT_DELAY)

    def report_failure(self, error: BaseException | None) -> None:
        """The one place a failed agent call reaches the operator."""
        if isinstance(error, AgentUnavailable):
            # Only the event feed decides "down": a call that timed out on a
            # busy agent must not leave the banner up while the feed flows.
            if self.agent_up is not False:
                self.notify(str(error), title="Agent unavailable", severity="error")
        elif isinstance(error, ScbError):
            self.notify(error.message, title=error.code, severity="error")
        else:
            self.notify(repr(error), title="Console error", severity="error")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of every screen, each taking the operator there."""
        yield from super().get_system_commands(screen)
        if type(screen) not in self.MODES.values():
            # A screen opened from a section, such as one certificate.
            for binding in screen.BINDINGS:
                yield SystemCommand(
                    f"{screen.SUB_TITLE or 'This screen'}: {binding.description}",
                    f"key {binding.key_display or binding.key}",
                    partial(screen.run_action, binding.action),
                )
        for key, mode, title in SECTIONS:
            go = partial(self.switch_mode, mode)
            yield SystemCommand(f"Go to {title}", f"key {key}", go)
            for binding in self.MODES[mode].BINDINGS:
                yield SystemCommand(
                    f"{title}: {binding.description}",
                    f"key {binding.key_display or binding.key}",
                    partial(self.run_in_mode, mode, binding.action),
                )
        yield SystemCommand("Help", "key ?", self.action_help)

    async def run_in_mode(self, mode: str, action: str) -> None:
        await self.switch_mode(mode)
        await self.screen.run_action(action)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scb-console",
        description="The SCB admin console (talks to a running `scb-agent serve`).",
    )
    parser.add_argument("--state-dir", help="override SCB_STATE_DIR")
    args = parser.parse_args(argv)

    paths = resolve_paths(state_dir=args.state_dir)
    ConsoleApp(AgentLink(paths.admin_socket)).run()
    return 0
