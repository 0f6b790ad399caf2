"""Screen 1: the agent, its CA, the counts, and every change as it happens."""

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, RichLog, Static

from ..formatting import describe_event, when
from .agent_screen import AgentScreen

FEED_LINES = 500


class OverviewScreen(AgentScreen):
    SECTION = "overview"
    SUB_TITLE = "Overview"
    BINDINGS = []
    _waiting = True

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            yield Static(id="agent-card", classes="card")
            yield Static(id="counts-card", classes="card")
        yield Label("Live events", classes="section-title")
        yield RichLog(id="feed", max_lines=FEED_LINES, wrap=False)

    def on_mount(self) -> None:
        self.query_one("#agent-card").border_title = "Agent"
        self.query_one("#counts-card").border_title = "Counts"
        self.query_one("#feed", RichLog).write(
            Text("Waiting for the agent's events…", style="dim")
        )

    def reload(self) -> None:
        self.load_status()

    def agent_event(self, event: dict) -> None:
        feed = self.query_one("#feed", RichLog)
        if self._waiting:
            feed.clear()
            self._waiting = False
        feed.write(describe_event(event))
        self.reload_soon()

    @work(exclusive=True, group="status", exit_on_error=False)
    async def load_status(self) -> None:
        status = await self.app.link.call("status")
        self.query_one("#agent-card", Static).update(_agent_table(status))
        self.query_one("#counts-card", Static).update(_counts_table(status))


def _agent_table(status: dict) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Up since", when(status["started_at"], seconds=True) + " UTC")
    table.add_row("CA", status["ca"])
    table.add_row("Issuer", status["issuer"])
    table.add_row("Listen", status["listen"])
    table.add_row("Approval", status["approval"])
    table.add_row("Domains", ", ".join(status["allowed_domains"]) or "(none)")
    return table


def _counts_table(status: dict) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column()
    table.add_column(justify="right")
    waiting = len(status.get("awaiting_approval", []))
    table.add_row(
        "Awaiting approval",
        Text(f"{waiting:,}", style="bold yellow" if waiting else "dim"),
    )
    table.add_row("Requests open", f"{status['pending']:,}")
    table.add_row("Certificates", Text(f"{status['certificates']:,}", style="bold"))
    table.add_row("├ valid", Text(f"{status['valid']:,}", style="green"))
    table.add_row("└ revoked", Text(f"{status['revoked']:,}", style="red"))
    table.add_row("Active bans", f"{status['bans']:,}")
    return table
