"""Running the kiosk's screen as a program: the log file, the crash screen, the exit status.

``sys.exit(run(app))``: 0 when the librarian stopped it, 75 when they asked for a restart,
70 after an unhandled error (shown to the children as a friendly screen for a few seconds,
logged under the data directory), so that systemd brings the kiosk back.
"""

from __future__ import annotations

import logging

from bookcorner.kiosk.app import KioskApp
from bookcorner.kiosk.crash import EXIT_CRASH, CrashApp

log = logging.getLogger(__name__)

#: how long the "sorry, restarting" screen stays before the process exits
CRASH_SCREEN_S = 5.0


def run(app: KioskApp, *, headless: bool = False, crash_screen_s: float = CRASH_SCREEN_S) -> int:
    try:
        app.run(headless=headless)
    except Exception as error:  # an error outside the app's own loop (its start, its end)
        log.critical("the kiosk failed", exc_info=error)
        crash: BaseException | None = error
    else:
        crash = app.crash
    if crash is None:
        return app.return_code or 0
    languages = ("zh_CN", "en") if app.settings.screen.bilingual else (app.settings.kiosk.language,)
    try:
        CrashApp(crash_screen_s, app.settings.screen.theme, languages).run(headless=headless)
    except Exception as error:
        log.error("could not show the crash screen", exc_info=error)
    return EXIT_CRASH
