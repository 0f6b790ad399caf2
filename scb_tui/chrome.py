"""Lines every screen carries: the navigation bar and the agent-down banner."""

from rich.text import Text
from textual.widgets import Static

SECTIONS = [
    ("1", "overview", "Overview"),
    ("2", "requests", "Requests"),
    ("3", "certificates", "Certificates"),
    ("4", "bans", "Bans"),
    ("5", "audit", "Audit"),
]


class NavBar(Static):
    """`SCB   1 Overview  2 Requests …` with the current section lit, and
    whether the agent answers."""

    def __init__(self, section: str):
        super().__init__()
        self.section = section

    def on_mount(self) -> None:
        self.watch(self.app, "agent_up", self._draw, init=True)

    def _draw(self, agent_up: bool | None) -> None:
        # No styled run starts with a space: some SVG renderers (rsvg) drop
        # it, which glued each key to the label before it in screenshots.
        line = Text(" ")
        line.append("SCB", style="bold reverse")
        line.append("   ")
        for key, mode, title in SECTIONS:
            current = mode == self.section
            line.append(key, style="bold yellow" if current else "bold dim")
            line.append(" ")
            line.append(title, style="bold underline" if current else "default")
            line.append("  ")
        line.append(" ")
        line.append(*_agent_state(agent_up))
        self.update(line)


def _agent_state(agent_up: bool | None) -> tuple[str, str]:
    if agent_up is None:
        return "● connecting", "yellow"
    return ("● agent up", "green") if agent_up else ("● agent down", "bold red")


class AgentBanner(Static):
    """Shown on every screen while the agent is down; hidden otherwise."""

    def on_mount(self) -> None:
        self.watch(self.app, "agent_up", self._show, init=True)

    def _show(self, agent_up: bool | None) -> None:
        self.display = agent_up is False
        self.update(
            f"The agent is not running: nothing answers on {self.app.link.where}. "
            "Start it with `scb-agent serve`; the console reconnects by itself."
        )
