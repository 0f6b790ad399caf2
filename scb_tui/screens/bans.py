"""Screen 4: active bans; `u` lifts the selected one, `b` adds one."""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from scb_agent.admin_cmd import operator_name

from ..formatting import shorten, when
from ..layout import is_wide, rest
from .agent_screen import AgentScreen
from .ban_form import BanForm
from .confirm import ConfirmScreen


class BansScreen(AgentScreen):
    SECTION = "bans"
    SUB_TITLE = "Bans"
    BINDINGS = [
        Binding("u", "lift", "Lift ban", id="bans.lift"),
        Binding("b", "add", "Add ban", id="bans.add"),
        Binding("ctrl+r", "reload", "Refresh", id="bans.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.bans: dict[str, dict] = {}
        self.wide = True
        self.widths: list[int] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="bans", cursor_type="row", zebra_stripes=True)

    def fit(self, width: int) -> None:
        self.wide = is_wide(width)
        fixed = [7, 20, 8, 16, 16, 7] if self.wide else [20, 12, 7]
        labels = ["Value", "Reason", "Until", "Strikes"]
        widths = [20, rest(width, fixed), 12, 7]
        if self.wide:
            labels = ["Kind", "Value", "Reason", "By", "Since", "Until", "Strikes"]
            widths = [7, 20, rest(width, fixed), 8, 16, 16, 7]
        self.widths = widths
        table = self.query_one("#bans", DataTable)
        table.clear(columns=True)
        for label, column_width in zip(labels, widths, strict=True):
            table.add_column(label, width=column_width)
        self._show_rows()

    def reload(self) -> None:
        self.load_bans()

    def action_reload(self) -> None:
        self.reload()

    def agent_event(self, event: dict) -> None:
        if event["event"] in ("banned", "unbanned"):
            self.reload_soon()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_bans(self) -> None:
        rows = await self.app.link.call("bans")
        self.bans = {str(row["id"]): row for row in rows}
        self._show_rows()

    def _show_rows(self) -> None:
        table = self.query_one("#bans", DataTable)
        table.clear()
        for key, ban in self.bans.items():
            until = "until lifted"
            if ban.get("expires_at"):
                until = when(ban["expires_at"], short=not self.wide)
            cells = [
                shorten(ban["value"], 20),
                shorten(ban.get("reason"), self.widths[-5 if self.wide else 1]),
                until,
                str(ban.get("strikes", 1)),
            ]
            if self.wide:
                cells[2:2] = [ban.get("actor", "-"), when(ban.get("created_at"))]
                cells.insert(0, ban["kind"])
            table.add_row(*cells, key=key)

    def selected(self) -> dict | None:
        table = self.query_one("#bans", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.bans.get(key)

    def action_lift(self) -> None:
        ban = self.selected()
        if ban is None:
            self.notify("No ban selected.", severity="warning")
            return
        question = f"Lift the ban on {ban['value']} ({ban.get('reason') or '-'})?"

        def decided(yes: bool | None) -> None:
            if yes:
                self.lift(ban)

        confirm = ConfirmScreen("Lift ban", question, "Lift", "warning")
        self.app.push_screen(confirm, decided)

    def action_add(self) -> None:
        def filled(fields: dict | None) -> None:
            if fields:
                self.add(fields)

        self.app.push_screen(BanForm(), filled)

    @work(group="change", exit_on_error=False)
    async def lift(self, ban: dict) -> None:
        await self.app.link.call(
            "unban", id_or_value=str(ban["id"]), actor=operator_name()
        )
        self.notify(f"Lifted the ban on {ban['value']}.")
        self.reload_soon()

    @work(group="change", exit_on_error=False)
    async def add(self, fields: dict) -> None:
        await self.app.link.call("ban", actor=operator_name(), **fields)
        self.notify(f"Banned {fields['value']}.")
        self.reload_soon()
