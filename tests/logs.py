"""Capturing every log record of the test's process, formatted as the products' log files
format them: for the tests that search logs for a child's name or card number."""

from __future__ import annotations

import logging


class Lines(logging.Handler):
    """Every record, formatted (records of loggers named in ``ignore`` left out)."""

    def __init__(self, ignore: tuple[str, ...] = ()) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.ignore = ignore
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(self.ignore):
            self.lines.append(self.format(record))
