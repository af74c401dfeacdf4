"""When the kiosk itself fails: a log file instead of a traceback, a friendly screen,
and an exit status that makes systemd start it again.

Textual draws on stderr, so nothing may be logged there: the log lives under the data
directory (``logs/kiosk.log``, rotated).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Center, Middle
from textual.widgets import Static

from bookcorner.i18n import N_, translate

#: exit statuses (sysexits.h): a crash (systemd restarts us), a restart asked for
EXIT_CRASH = 70
EXIT_RESTART = 75

LOG_FILE = "kiosk.log"


def log_path(data_dir: Path) -> Path:
    return data_dir / "logs" / LOG_FILE


def setup_logging(data_dir: Path) -> Path:
    """Everything the kiosk logs goes to ``<data_dir>/logs/kiosk.log``, nothing to stderr."""
    path = log_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return path


class CrashApp(App, inherit_bindings=False):
    """Shown for a few seconds after a crash, before the kiosk starts again (no keys)."""

    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { align: center middle; background: $panel; }
    #sorry { width: 64; height: auto; padding: 2 4; border: double $warning; text-align: center; }
    """

    def __init__(self, seconds: float, theme: str = "textual-dark", languages: tuple[str, ...] = ("zh_CN", "en")):
        super().__init__()
        self.seconds = seconds
        self.theme_name = theme
        self.languages = languages

    def compose(self) -> ComposeResult:
        messages = (N_("Sorry, the book corner has to restart."), N_("Everything done so far is saved."),
                    N_("It will be back in a moment."))
        text = "\n\n".join("\n".join(translate(m, language) for m in messages) for language in self.languages)
        with Middle(), Center():
            yield Static(text, id="sorry")

    def on_mount(self) -> None:
        self.theme = self.theme_name
        self.set_timer(self.seconds, lambda: self.exit(return_code=EXIT_CRASH))
