"""Screen 4: active bans; `u` lifts the selected one, `b` adds one."""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from scb_agent.admin_cmd import operator_name

from ..formatting import shorten, when
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

    def compose_body(self) -> ComposeResult:
        table = DataTable(id="bans", cursor_type="row", zebra_stripes=True)
        table.add_columns("Kind", "Value", "Reason", "By", "Since", "Until", "Strikes")
        yield table

    def reload(self) -> None:
        self.load_bans()

    def action_reload(self) -> None:
        self.reload()

    def agent_event(self, event: dict) -> None:
        if event["event"] in ("banned", "unbanned"):
            self.reload_soon()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_bans(self) -> None:
        result = await self.app.link.call("bans")
        rows = result["rows"] if isinstance(result, dict) else result
        self.bans = {str(row["id"]): row for row in rows}

        table = self.query_one("#bans", DataTable)
        table.clear()
        for key, ban in self.bans.items():
            table.add_row(
                ban["kind"],
                ban["value"],
                shorten(ban.get("reason"), 36),
                ban.get("actor", "-"),
                when(ban.get("created_at")),
                when(ban["expires_at"]) if ban.get("expires_at") else "until lifted",
                str(ban.get("strikes", 1)),
                key=key,
            )

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

        self.app.push_screen(ConfirmScreen("Lift ban", question, "Lift"), decided)

    def action_add(self) -> None:
        def filled(fields: dict | None) -> None:
            if fields:
                self.add(fields)

        self.app.push_screen(BanForm(), filled)

    @work(group="change", exit_on_error=False)
    async def lift(self, ban: dict) -> None:
        await self.app.link.call("unban", id_or_value=str(ban["id"]))
        self.notify(f"Lifted the ban on {ban['value']}.")
        self.reload_soon()

    @work(group="change", exit_on_error=False)
    async def add(self, fields: dict) -> None:
        await self.app.link.call("ban", actor=operator_name(), **fields)
        self.notify(f"Banned {fields['value']}.")
        self.reload_soon()
