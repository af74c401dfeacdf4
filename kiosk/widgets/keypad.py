"""A keypad for the librarian's PIN, for touch screens (a keyboard works too)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Button, Input

from bookcorner.i18n import _


class PinPad(Vertical):
    """A hidden-digits field over a 3x4 keypad; OK (or Enter) sends the PIN."""

    DEFAULT_CSS = """
    PinPad { width: 32; height: auto; }
    PinPad Input { width: 100%; }
    PinPad Grid { grid-size: 3 4; grid-gutter: 0 1; height: 12; width: 100%; }
    PinPad Grid Button { width: 100%; min-width: 6; height: 3; }
    """

    @dataclass
    class Entered(Message):
        pin: str

    def compose(self) -> ComposeResult:
        yield Input(password=True, max_length=12, restrict=r"[0-9]*", id="pin",
                    placeholder=_("PIN"))
        with Grid():
            for key in "123456789":
                yield Button(key, id=f"key-{key}", classes="digit")
            yield Button("⌫", id="key-back")
            yield Button("0", id="key-0", classes="digit")
            yield Button(_("OK"), id="key-ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        for button in self.query(Button):
            button.active_effect_duration = 0  # "1111" typed quickly is four presses, not one

    @on(Button.Pressed, ".digit")
    def _digit(self, event: Button.Pressed) -> None:
        field = self.query_one(Input)
        field.insert_text_at_cursor(str(event.button.label))
        field.focus()

    @on(Button.Pressed, "#key-back")
    def _back(self) -> None:
        field = self.query_one(Input)
        field.value = field.value[:-1]
        field.cursor_position = len(field.value)
        field.focus()

    @on(Button.Pressed, "#key-ok")
    @on(Input.Submitted)
    def _send(self, event: Button.Pressed | Input.Submitted) -> None:
        event.stop()
        field = self.query_one(Input)
        pin, field.value = field.value, ""
        if pin:
            self.post_message(self.Entered(pin))

    def clear(self) -> None:
        self.query_one(Input).value = ""
