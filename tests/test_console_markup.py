"""Text a client chose must show literally in the console, never as markup.

A DataTable reads a str cell as Rich markup, and an error message quotes the
client's bad value: a name like `[/x]` would raise MarkupError and take the
console down (or restyle it, for `[reverse]`).
"""

from textual.widgets import DataTable

from scb_tui.app import ConsoleApp

from .console_fake import T0, FakeAgentLink

HOSTILE = "bad_csr: '[/x][reverse]'"


class HostileAuditLink(FakeAgentLink):
    def _audit(self, limit=100, search=""):
        return [
            {
                "id": 1,
                "at": T0,
                "event": "refused",
                "actor": "agent",
                "peer": "192.168.7.23",
                "names": None,
                "serial": None,
                "detail": HOSTILE,
            }
        ]


async def test_audit_detail_quoting_a_client_shows_literally():
    app = ConsoleApp(HostileAuditLink())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("5")  # go to Audit
        await pilot.pause()
        table = app.screen.query_one("#audit", DataTable)

        detail = str(table.get_row_at(0)[-1])
        assert "[/x][reverse]" in detail
        assert app.is_running
