"""For a newcomer running the demo: codes to try, and a line to type them into."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from bookcorner.i18n import _


@dataclass(frozen=True)
class Hint:
    code: str
    what: str
    detail: str = ""


class DemoPanel(Vertical):
    """Demo cards and books, and an input line: a code typed and entered here is taken as a
    card tap (10 digits) or a scan, as if from the reader or the scanner. Keys typed as
    fast as a scanner (a paste, tmux send-keys) are taken as scans anywhere."""

    DEFAULT_CSS = """
    DemoPanel { dock: bottom; height: auto; background: $boost; border-top: solid $primary; }
    DemoPanel #demo-hints { height: auto; padding: 0 1; color: $text-muted; }
    DemoPanel Input, DemoPanel Input:focus { border: none; height: 1; padding: 0 1; background: $surface; }
    DemoPanel.-hidden { display: none; }
    """

    @dataclass
    class Entered(Message):
        """A code typed into the demo line."""

        code: str

    def __init__(self, hints: tuple[Hint, ...]) -> None:
        super().__init__()
        self.hints = hints

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 1))
        widest = max((len(hint.code) for hint in self.hints), default=0)
        for _half in range(2):  # the codes are never cut short; the labels give way
            table.add_column(no_wrap=True, min_width=widest)
            table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        half = (len(self.hints) + 1) // 2
        for left, right in zip(self.hints[:half], self.hints[half:] + (None,) * (2 * half - len(self.hints)), strict=True):
            row = [left.code, self._label(left)]
            row += [right.code, self._label(right)] if right else ["", ""]
            table.add_row(*row)
        yield Static(table, id="demo-hints")
        yield Input(placeholder=_("Demo: type a card number or a barcode and press Enter (F1 hides this)"),
                    id="demo-entry")

    @staticmethod
    def _label(hint: Hint) -> str:
        what = _(hint.what)
        return f"{what} ({hint.detail})" if hint.detail else what

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        code = event.value.strip()
        event.input.value = ""
        if code:
            self.post_message(self.Entered(code))
