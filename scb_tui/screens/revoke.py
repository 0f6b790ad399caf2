"""Revoking a certificate: pick an RFC 5280 reason, then confirm."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from scb_agent.admin_cmd import operator_name

from ..formatting import names_text
from .confirm import ConfirmScreen

# RFC 5280 reason codes that make sense for a leaf, in the order operators
# reach for them; cACompromise and friends are for CA certificates.
REASONS = [
    ("keyCompromise", "the private key was exposed or lost"),
    ("superseded", "a newer certificate replaces it"),
    ("cessationOfOperation", "the host or service is gone"),
    ("affiliationChanged", "the name or its owner changed"),
    ("privilegeWithdrawn", "the host may no longer hold it"),
    ("unspecified", "none of the above"),
]


class RevokeScreen(ModalScreen[str | None]):
    """Answers the chosen reason once confirmed, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="revoke.cancel")]

    def __init__(self, certificate: dict):
        super().__init__()
        self.certificate = certificate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Revoke certificate", classes="dialog-title")
            yield Static(
                f"{names_text(self.certificate['names'])}\n"
                f"serial {self.certificate['serial']}",
                classes="dialog-body",
            )
            yield OptionList(
                *(Option(f"{name}  [dim]{why}[/]", id=name) for name, why in REASONS),
                id="reasons",
            )
            yield Static("Enter to choose · Escape to cancel", classes="dialog-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        reason = event.option.id
        question = (
            f"Revoke {names_text(self.certificate['names'])} "
            f"(serial {self.certificate['serial']}) for {reason}?\n"
            "Clients checking the CRL will refuse it. This cannot be undone."
        )

        def confirmed(yes: bool | None) -> None:
            self.dismiss(reason if yes else None)

        self.app.push_screen(
            ConfirmScreen("Revoke certificate", question, "Revoke"), confirmed
        )

    def action_cancel(self) -> None:
        self.dismiss(None)


async def revoke(app, certificate: dict, reason: str) -> None:
    """Ask the agent to revoke; it signs and publishes a fresh CRL at once."""
    serial = certificate["serial"]
    await app.link.call("revoke", serial=serial, reason=reason, actor=operator_name())
    app.notify(f"Revoked {serial} ({reason}).")
