"""The form for a new ban: what, for how long, and why."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class BanForm(ModalScreen[dict | None]):
    """Answers the `ban` command's arguments, or None if cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ban.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a ban", classes="dialog-title")
            yield Static(
                "An address (10.0.0.7), a network (10.0.0.0/24) or a name "
                "(printer.home.arpa). Banned peers are refused before any work.",
                classes="dialog-body",
            )
            yield Input(placeholder="address, network or name", id="value")
            yield Input(
                placeholder="for how long: 1h, 7d (empty: until lifted)", id="for"
            )
            yield Input(placeholder="reason", id="reason")
            yield Static("Enter to go on · Escape to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "reason":
            self.focus_next()
            return
        fields = {field.id: field.value.strip() for field in self.query(Input)}
        if not fields["value"]:
            self.query_one("#value", Input).focus()
            return
        self.dismiss({key: value for key, value in fields.items() if value})

    def action_cancel(self) -> None:
        self.dismiss(None)
