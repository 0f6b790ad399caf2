"""One certificate: every X.509 field, its store record and its PEM."""

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..formatting import status_text, when
from ..x509_fields import certificate_fields
from .agent_screen import AgentScreen
from .revoke import RevokeScreen, revoke


class CertificateDetailScreen(AgentScreen):
    SECTION = "certificates"
    SUB_TITLE = "Certificate"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="certificate.back"),
        Binding("r", "revoke", "Revoke", id="certificate.revoke"),
        Binding("c", "copy_pem", "Copy PEM", id="certificate.copy"),
    ]

    def __init__(self, serial: str):
        super().__init__()
        self.serial = serial
        self.certificate: dict | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="certificate-view"):
            yield Static(f"Loading {self.serial}…", id="certificate-fields")
            yield Static("", id="certificate-pem")

    def on_mount(self) -> None:
        self.query_one("#certificate-view").focus()

    def reload(self) -> None:
        self.load_certificate()

    def agent_event(self, event: dict) -> None:
        if event["event"] == "revoked" and event.get("serial") == self.serial:
            self.reload_soon()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_certificate(self) -> None:
        self.certificate = await self.app.link.call("certificate", serial=self.serial)
        self.query_one("#certificate-fields", Static).update(
            _fields_table(self.certificate)
        )
        self.query_one("#certificate-pem", Static).update(
            Text(self.certificate["pem"].rstrip(), style="dim")
        )

    def action_copy_pem(self) -> None:
        if self.certificate is not None:
            self.app.copy_to_clipboard(self.certificate["pem"])
            self.notify("PEM copied to the terminal's clipboard.")

    def action_revoke(self) -> None:
        certificate = self.certificate
        if certificate is None or certificate["status"] == "revoked":
            return

        def chosen(reason: str | None) -> None:
            if reason:
                self.revoke(certificate, reason)

        self.app.push_screen(RevokeScreen(certificate), chosen)

    @work(group="revoke", exit_on_error=False)
    async def revoke(self, certificate: dict, reason: str) -> None:
        await revoke(self.app, certificate, reason)
        self.reload_soon()  # one reload with the feed's `revoked`, not two


def _fields_table(certificate: dict) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("Status", status_text(certificate["status"]))
    if certificate.get("revoked_at"):
        revoked = f"{when(certificate['revoked_at'], seconds=True)} UTC"
        table.add_row("Revoked", f"{revoked} ({certificate.get('reason')})")
    table.add_row("Issued", f"{when(certificate['issued_at'], seconds=True)} UTC")
    table.add_row("Request", certificate.get("request_id") or "-")
    for label, value in certificate_fields(certificate["pem"]):
        table.add_row(label, value)
    return table
