"""Screen 5: the append-only audit log, newest first, filterable."""

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label

from ..formatting import shorten, when
from ..layout import is_wide, rest
from .searchable import SearchableScreen

SHOWN = 200


class AuditScreen(SearchableScreen):
    SECTION = "audit"
    SEARCH_BOX = "filter"
    TABLE = "audit"
    SUB_TITLE = "Audit"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="audit.filter"),
        Binding("ctrl+r", "reload", "Refresh", id="audit.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.wide = True
        self.widths: list[int] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="audit-bar", classes="bar"):
            yield Input(placeholder="/ filter: event, actor, peer, name…", id="filter")
            yield Label("", id="audit-info")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#audit", DataTable).focus()

    def fit(self, width: int) -> None:
        self.wide = is_wide(width)
        if self.wide:
            fixed = [19, 9, 8, 15, 30]
            labels = ["Time", "Event", "Actor", "Peer", "Names", "Detail"]
        else:
            fixed = [14, 9, 8]
            labels = ["Time", "Event", "Actor", "What"]
        self.widths = [*fixed, rest(width, fixed)]
        table = self.query_one("#audit", DataTable)
        table.clear(columns=True)
        for label, column_width in zip(labels, self.widths, strict=True):
            table.add_column(label, width=column_width)
        self._show_rows()

    def reload(self) -> None:
        self.load_audit()

    def action_reload(self) -> None:
        self.reload()

    def agent_event(self, event: dict) -> None:
        self.reload_soon()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_audit(self) -> None:
        self.rows = await self.app.link.call("audit", limit=SHOWN, search=self.search)
        self._show_rows()
        shown = f"{len(self.rows)} newest" + (
            f" matching “{self.search}”" if self.search else ""
        )
        self.query_one("#audit-info", Label).update(shown)

    def _show_rows(self) -> None:
        table = self.query_one("#audit", DataTable)
        table.clear()
        for row in self.rows:
            detail = row.get("detail") or row.get("serial") or row.get("request_id")
            cells = [
                when(row["at"], seconds=True, short=not self.wide),
                row["event"],
                row["actor"],
            ]
            if self.wide:
                cells += [row.get("peer") or "", shorten(row.get("names"), 30)]
            else:
                # Narrow: who and what in one column, most telling part first.
                subject = [row.get("names"), row.get("peer"), detail]
                detail = " · ".join(part for part in subject if part)
            # Text, not str: a DataTable reads str as markup, and a detail
            # quotes whatever a client sent ("[/x]" would crash the console).
            detail_cell = Text(shorten(detail, self.widths[-1]))
            table.add_row(*cells, detail_cell, key=str(row["id"]))

    def action_filter(self) -> None:
        self.focus_search()

    def searched(self) -> None:
        self.load_audit()
