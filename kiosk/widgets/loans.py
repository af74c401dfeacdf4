"""The books a child holds, with their due dates; overdue ones stand out."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from bookcorner.i18n import _
from bookcorner.kiosk.session import LoanLine
from bookcorner.kiosk.wording import book_title, format_date


class LoanList(Static):
    """One line per book on loan: its title and when it is due (overdue ones in red)."""

    DEFAULT_CSS = """
    LoanList { height: auto; padding: 0 2; }
    """

    def show(self, loans: tuple[LoanLine, ...]) -> None:
        text = Text()
        if not loans:
            text.append(_("No books at the moment."), style="italic")
        for index, loan in enumerate(loans):
            if index:
                text.append("\n")
            text.append("• ")
            text.append(book_title(loan.title), style="bold")
            if loan.overdue:
                text.append("  " + _("was due {due}: OVERDUE").format(due=format_date(loan.due)),
                            style="bold red reverse")
            else:
                text.append("  " + _("due {due}").format(due=format_date(loan.due)))
        self.update(text)
