"""Screen 3: issued certificates, one page at a time.

The agent pages and filters (`certificates` with search, status, offset and
limit), so the table never holds more than PAGE rows however large the store
grows. Typing in the search box asks again after a short pause; Enter asks at
once.
"""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label

from ..formatting import day, names_text, shorten, status_text, when
from ..layout import is_wide, rest
from .certificate_detail import CertificateDetailScreen
from .revoke import RevokeScreen, revoke
from .searchable import SearchableScreen

PAGE = 100
STATUSES = ["", "valid", "revoked", "expired"]


class CertificatesScreen(SearchableScreen):
    SECTION = "certificates"
    SEARCH_BOX = "search"
    TABLE = "certificates"
    SUB_TITLE = "Certificates"
    BINDINGS = [
        Binding("slash", "search", "Search", id="certificates.search"),
        Binding("enter", "detail", "Detail", id="certificates.detail", show=False),
        Binding("r", "revoke", "Revoke", id="certificates.revoke"),
        Binding("s", "next_status", "Status", id="certificates.status"),
        Binding("n", "page(1)", "Next page", id="certificates.next"),
        Binding("p", "page(-1)", "Prev page", id="certificates.prev"),
        Binding("ctrl+r", "reload", "Refresh", id="certificates.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status = ""
        self.page_offset = 0
        self.total = 0
        self.exact = True
        self.rows: dict[str, dict] = {}
        self.widths: list[tuple[str, int]] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="certificates-bar", classes="bar"):
            yield Input(placeholder="/ search names or serial", id="search")
            yield Label("", id="page-info")
        yield DataTable(id="certificates", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#certificates", DataTable).focus()

    def fit(self, width: int) -> None:
        self.widths = _widths(width)
        table = self.query_one("#certificates", DataTable)
        table.clear(columns=True)
        for label, column_width in self.widths:
            table.add_column(label, width=column_width)
        self._show_rows()

    def reload(self) -> None:
        self.load_page()

    def action_reload(self) -> None:
        self.reload()

    def agent_event(self, event: dict) -> None:
        if event["event"] in ("issued", "revoked"):
            self.reload_soon()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_page(self) -> None:
        page = await self.app.link.call(
            "certificates",
            search=self.search,
            status=self.status,
            offset=self.page_offset,
            limit=PAGE,
        )
        self.total = page["total"]
        self.exact = page.get("exact", True)
        self.rows = {row["serial"]: row for row in page["rows"]}
        self._show_rows()

    def _show_rows(self) -> None:
        table = self.query_one("#certificates", DataTable)
        selected = self.selected() or {}
        table.clear()
        serial, names, not_after, _, reason = (width for _, width in self.widths)
        for row in self.rows.values():
            table.add_row(
                shorten(row["serial"], serial),
                names_text(row["names"], names),
                when(row["not_after"]) if not_after > 10 else day(row["not_after"]),
                status_text(row["status"]),
                shorten(row.get("reason"), reason),
                key=row["serial"],
            )
        if selected.get("serial") in self.rows:
            table.move_cursor(row=table.get_row_index(selected["serial"]))
        self.query_one("#page-info", Label).update(self._page_info())

    def _page_info(self) -> str:
        shown = len(self.rows)
        first = self.page_offset + 1 if shown else 0
        status = self.status or "all"
        # Past the store's count limit the agent says "at least".
        total = f"{self.total:,}" + ("" if self.exact else "+")
        return f"{first:,}–{self.page_offset + shown:,} of {total} · {status}"

    def selected(self) -> dict | None:
        table = self.query_one("#certificates", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key)

    def action_search(self) -> None:
        self.focus_search()

    def searched(self) -> None:
        self.page_offset = 0
        self.load_page()

    def action_next_status(self) -> None:
        self.status = STATUSES[(STATUSES.index(self.status) + 1) % len(STATUSES)]
        self.page_offset = 0
        self.load_page()

    def action_page(self, step: int) -> None:
        offset = self.page_offset + step * PAGE
        if 0 <= offset < max(self.total, 1):
            self.page_offset = offset
            self.load_page()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(CertificateDetailScreen(row["serial"]))

    def action_revoke(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row["status"] == "revoked":
            self.notify(f"{row['serial']} is already revoked.", severity="warning")
            return

        def chosen(reason: str | None) -> None:
            if reason:
                self.revoke(row, reason)

        self.app.push_screen(RevokeScreen(row), chosen)

    @work(group="revoke", exit_on_error=False)
    async def revoke(self, row: dict, reason: str) -> None:
        await revoke(self.app, row, reason)
        self.reload_soon()


def _widths(width: int) -> list[tuple[str, int]]:
    """Serial, names, not after, status, reason; names take the rest."""
    if is_wide(width):
        serial, not_after, reason = 20, 16, 20
    else:
        serial, not_after, reason = 12, 10, 13
    fixed = [serial, not_after, 7, reason]
    names = rest(width, fixed, minimum=20)
    labels = ["Serial", "Names", "Not after", "Status", "Reason"]
    return list(zip(labels, [serial, names, not_after, 7, reason], strict=True))
