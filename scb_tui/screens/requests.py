"""Screen 2: pending and recent requests, each at its live stage.

The table is rebuilt from `self.requests`, which the event feed keeps current
between reloads: a request appears when it arrives and moves through
resolving, connecting, awaiting approval and signing as the agent works.
"""

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from scb_agent.admin_cmd import operator_name

from ..formatting import clock, names_text, shorten, stage_text, when
from ..layout import is_wide, rest
from .agent_screen import AgentScreen
from .confirm import ConfirmScreen
from .prompt import PromptScreen

SHOWN = 100
AWAITING = "awaiting_approval"


class RequestsScreen(AgentScreen):
    SECTION = "requests"
    SUB_TITLE = "Requests"
    BINDINGS = [
        Binding("a", "approve", "Approve", id="requests.approve"),
        Binding("d", "deny", "Deny", id="requests.deny"),
        Binding("ctrl+r", "reload", "Refresh", id="requests.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.requests: dict[str, dict] = {}
        self.widths: list[tuple[str, int]] = []
        self._detail_id: str | None = None
        self._rows_pending = False  # a redraw is due after the next refresh

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="requests", cursor_type="row", zebra_stripes=True)
        yield Static("No request selected.", id="request-detail", classes="card")

    def on_mount(self) -> None:
        self.query_one("#request-detail").border_title = "Request"

    def fit(self, width: int) -> None:
        self.widths = _widths(width)
        table = self.query_one("#requests", DataTable)
        table.clear(columns=True)
        for label, column_width in self.widths:
            table.add_column(label, width=column_width)
        self._show_rows()

    def reload(self) -> None:
        self.load_requests()

    def action_reload(self) -> None:
        self.reload()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_requests(self) -> None:
        rows = await self.app.link.call("requests", limit=SHOWN)
        self.requests = {row["id"]: row for row in rows}
        self._show_rows()

    def agent_event(self, event: dict) -> None:
        if not self.is_current:
            self.reload_soon()  # shown again, it reloads them all
            return
        request_id = event.get("request_id")
        if not request_id or not _follow(self.requests, event):
            return
        # A burst of events (five per issuance) redraws the table once.
        if not self._rows_pending:
            self._rows_pending = True
            self.call_after_refresh(self._show_rows)
        if request_id == self._detail_id:
            self.load_detail(request_id)

    def _show_rows(self) -> None:
        self._rows_pending = False
        table = self.query_one("#requests", DataTable)
        selected = self.selected_id()
        table.clear()
        for row in _ordered(self.requests.values()):
            table.add_row(*_cells(row, self.widths), key=row["id"])
        if selected in self.requests:
            table.move_cursor(row=table.get_row_index(selected))

    def selected_id(self) -> str | None:
        table = self.query_one("#requests", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        request_id = event.row_key.value
        if request_id != self._detail_id:
            self._detail_id = request_id
            self.load_detail(request_id)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load_detail(self, request_id: str) -> None:
        found = await self.app.link.call("request", request_id=request_id)
        self.query_one("#request-detail", Static).update(_detail(found))

    def action_approve(self) -> None:
        request = self._awaiting("approve")
        if request is None:
            return
        question = f"Approve {names_text(request['names'])} for {request['peer']}?"

        def decided(yes: bool | None) -> None:
            if yes:
                self.approve(request["id"])

        self.app.push_screen(
            ConfirmScreen("Approve request", question, "Approve", "success"), decided
        )

    def action_deny(self) -> None:
        request = self._awaiting("deny")
        if request is None:
            return
        question = f"Deny {names_text(request['names'])} for {request['peer']}?"

        def decided(reason: str | None) -> None:
            if reason is not None:
                self.deny(request["id"], reason)

        self.app.push_screen(
            PromptScreen("Deny request", question, "reason (shown to the host)"),
            decided,
        )

    def _awaiting(self, verb: str) -> dict | None:
        request = self.requests.get(self.selected_id() or "")
        if request is None or request["stage"] != AWAITING:
            self.notify(
                f"Select a request awaiting approval to {verb} it.",
                severity="warning",
            )
            return None
        return request

    @work(group="decide", exit_on_error=False)
    async def approve(self, request_id: str) -> None:
        await self.app.link.call(
            "approve", request_id=request_id, actor=operator_name()
        )
        self.notify(f"Request {request_id} approved.")

    @work(group="decide", exit_on_error=False)
    async def deny(self, request_id: str, reason: str) -> None:
        await self.app.link.call(
            "deny", request_id=request_id, reason=reason, actor=operator_name()
        )
        self.notify(f"Request {request_id} denied.")


def _follow(requests: dict[str, dict], event: dict) -> bool:
    """Apply one feed event to the known requests; True if anything changed."""
    kind, request_id = event["event"], event["request_id"]
    if kind == "request_received":
        requests[request_id] = {
            "id": request_id,
            "peer": event.get("peer", "?"),
            "names": [],
            "stage": "received",
            "outcome": None,
            "error_code": None,
            "error_message": None,
            "serial": None,
            "created_at": event["at"],
        }
        return True

    request = requests.get(request_id)
    if request is None or kind not in ("stage_changed", "issued", "failed"):
        return False
    request["names"] = event.get("names") or request["names"]
    if kind == "stage_changed":
        request["stage"] = event["stage"]
    else:
        request.update(stage=kind, outcome=kind, serial=event.get("serial"))
        request.update(error_code=event.get("code"), error_message=event.get("message"))
    return True


def _ordered(requests) -> list[dict]:
    """Open requests first, then the finished ones; newest first in each."""
    rows = sorted(requests, key=lambda r: r["created_at"], reverse=True)
    open_ = [r for r in rows if r["outcome"] is None]
    done = [r for r in rows if r["outcome"] is not None]
    return (open_ + done)[:SHOWN]


def _widths(width: int) -> list[tuple[str, int]]:
    """Narrow: the error's code stands in for "failed"; its text is below."""
    if is_wide(width):
        fixed = [16, 30, 15, 17]
        labels = ["Received", "Names", "Peer", "Stage", "Error"]
        return list(zip(labels, [*fixed, rest(width, fixed)], strict=True))
    fixed = [11, 15, 17]
    names = rest(width, fixed, minimum=20)
    labels = ["Received", "Names", "Peer", "Stage"]
    return list(zip(labels, [11, names, 15, 17], strict=True))


def _cells(row: dict, widths: list[tuple[str, int]]) -> tuple:
    names_width = widths[1][1]
    stage = stage_text(row["stage"])
    cells = [
        when(row["created_at"], short=len(widths) == 4),
        names_text(row["names"], names_width),
        row["peer"],
        stage,
    ]
    if len(widths) == 4:
        if row.get("error_code"):
            stage.plain = shorten(row["error_code"], 17)
        return tuple(cells)
    error = ""
    if row.get("error_code"):
        error = f"{row['error_code']}: {row.get('error_message') or ''}"
    return (*cells, Text(shorten(error, widths[4][1]), style="red"))


def _detail(request: dict) -> Text:
    text = Text()
    # Spaces go unstyled, between the styled runs (see chrome.NavBar).
    text.append(names_text(request["names"]) or "(names not read yet)", style="bold")
    text.append("  ")
    text.append(f"from {request['peer']}  ·  id {request['id']}", style="dim")
    text.append("\n")
    for index, stage in enumerate(request.get("stages", [])):
        if index:
            text.append("→ ", style="dim")
        text.append_text(stage_text(stage["stage"]))
        text.append(" ")
        text.append(clock(stage["at"]) + " ", style="dim")
    if request.get("error_code"):
        text.append(f"\n{request['error_code']}: ", style="bold red")
        text.append(request.get("error_message") or "")
    if request.get("serial"):
        text.append(f"\nserial {request['serial']}", style="green")
    if request["stage"] == AWAITING:
        text.append("\nwaiting for an operator: a approve · d deny", style="yellow")
    return text
