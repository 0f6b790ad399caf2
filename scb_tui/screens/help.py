"""`?`: every key of the screen underneath and of the whole console."""

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, underneath: Screen):
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Label("Keys", classes="dialog-title")
            yield Static(self._keys())
            yield Static(
                "Ctrl+P opens the command palette: every action of every screen. "
                "Times are UTC. Escape or ? closes this.",
                classes="dialog-hint",
            )

    def _keys(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        title = self.underneath.SUB_TITLE or type(self.underneath).__name__
        table.add_row("", f"[bold]{title}[/]")
        for binding in self.underneath.BINDINGS:
            table.add_row(_key(binding), binding.description)
        table.add_row("", "")
        table.add_row("", "[bold]Everywhere[/]")
        for binding in self.app.BINDINGS:
            table.add_row(_key(binding), binding.description)
        table.add_row("ctrl+p", "Command palette")
        return table


def _key(binding: Binding) -> str:
    names = {"slash": "/", "question_mark": "?", "escape": "Esc", "enter": "Enter"}
    return " ".join(names.get(key, key) for key in binding.key.split(","))
