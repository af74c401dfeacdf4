"""The answer to a scan or a tap: one glance says whether it worked."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from bookcorner.kiosk.session import Feedback
from bookcorner.kiosk.wording import Tone

# Each answer has its own shape as well as its colour, so that a colour-blind child
# tells them apart: a tick for done, a cross for refused, "!" for look, and a triangle
# for "not saved: tell the librarian" (it shared the refusal's cross before).
_MARK = {Tone.SUCCESS: "✔", Tone.REFUSAL: "✘", Tone.WARNING: "!", Tone.ERROR: "▲"}


class Banner(Static):
    """A large colour-coded answer: green done, red refused, amber "look", red-on-white
    "not saved". The screen's language first and big, the other language under it."""

    DEFAULT_CSS = """
    Banner {
        width: 100%;
        height: auto;
        min-height: 5;
        padding: 1 2;
        margin: 1 0;
        text-align: center;
        content-align: center middle;
        display: none;
        border: heavy $foreground 40%;
    }
    Banner.-shown { display: block; }
    Banner.-success { background: $success 35%; border: heavy $success; }
    Banner.-refusal { background: $error 35%; border: heavy $error; }
    Banner.-warning { background: $warning 30%; border: heavy $warning; }
    Banner.-error { background: $error; color: $foreground; border: double $foreground; }
    """

    def show(self, feedback: Feedback) -> None:
        text = Text(justify="center")
        for index, words in enumerate(feedback.words):
            if index:
                text.append("\n\n")
            if index == 0:
                text.append(f"{_MARK[feedback.tone]}  {words.headline}", style="bold")
            else:
                text.append(words.headline, style="bold")
            if words.detail:
                text.append("\n" + words.detail)
        for words in feedback.challenge:  # the reading challenge: "7 of 10", big, under the answer
            text.append("\n\n" + words.headline, style="bold reverse")
            if words.detail:
                text.append("\n" + words.detail, style="bold")
        self.set_classes(f"-shown -{feedback.tone}")
        self.update(text)
        self.feedback = feedback

    def clear(self) -> None:
        self.set_classes("")
        self.update("")
        self.feedback = None

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

    feedback: Feedback | None = None
