"""What the central server's log says about an exception: where it happened (the
traceback's frames) and what kind of error it was, never the error's message.

A message can carry a child's data whatever SQLAlchemy's ``hide_parameters`` hides: the
database's own text quotes the failing row (PostgreSQL's ``DETAIL: Key (card_id)=(...)``,
``CONTEXT: COPY loans, line 1, column patron_id: "..."``, ``JSON data, line 1: ...``,
``invalid input syntax for type date: "..."``), and so do Python's (a ``KeyError`` of a
patron id, openpyxl's "... cannot be used in worksheets" of a damage note). So every
record this process logs with an exception has the exception's text replaced by its
frames, its class, the driver's error class and SQLSTATE and the SQL statement (written
by the code, with parameters: no values), for each exception of the chain.
Paths are logged without their query strings and card numbers (``shown_path``).
docs/operations.md states the policy.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

HIDDEN = "(its message is not logged: it may quote a row's values)"
_MARK = "_bookcorner_no_values"
#: path segments that are personal: a card's number in the dashboard's card forms
_PERSONAL_SEGMENTS = (re.compile(r"(/school/cards/)[^/?]+"),)


def shown_path(path: str) -> str:
    """A request's path as a log may show it: without its query string (a search for a
    student's name, a redirect naming a card) and without a card number in it."""
    path, query, _rest = path.partition("?")
    for segment in _PERSONAL_SEGMENTS:
        path = segment.sub(r"\1{card_id}", path)
    return path + ("?..." if query else "")


def _kind(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def summary(error: BaseException) -> str:
    """The error's class, its driver error's class and SQLSTATE, its SQL statement: what
    diagnosis needs, and no value from any row."""
    parts = [_kind(error)]
    driver = getattr(error, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
    if isinstance(driver, BaseException):
        parts.append(f"from {_kind(driver)}")
    for source in (driver, error):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str) and code:
            parts.append(f"SQLSTATE {code}")
            break
        name = getattr(source, "sqlite_errorname", None)
        if isinstance(name, str) and name:
            parts.append(name)
            break
    statement = getattr(error, "statement", None)
    if isinstance(statement, str) and statement:
        parts.append("in: " + " ".join(statement.split())[:300])
    return " ".join(parts) + " " + HIDDEN


def described(error: BaseException) -> str:
    """The whole chain (causes and contexts, as Python prints it), each exception as its
    frames and ``summary``."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    parts: list[str] = []
    for index, (exception, _link) in enumerate(reversed(chain)):
        if index:
            parts.append("\n\n" + chain[len(chain) - index][1] + "\n\n")
        if exception.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(exception.__traceback__))
        parts.append(summary(exception))
    return "".join(parts)


def _clean(record: logging.LogRecord) -> None:
    # uvicorn's access log (at --log-level debug): client, method, path with query, version, status
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5 \
            and isinstance(record.args[2], str):
        record.args = (*record.args[:2], shown_path(record.args[2]), *record.args[3:])
    info = record.exc_info
    if info and info[1] is not None:
        record.exc_text = described(info[1])
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = HIDDEN


def install() -> None:
    """From now on every log record of this process that carries an exception (the app's
    own, uvicorn's "Exception in ASGI application", a background job's) carries it
    without its message, and uvicorn's access log shows paths as ``shown_path``.
    Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, _MARK, False):
        return

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = factory(*args, **kwargs)
        _clean(made)
        return made

    setattr(record, _MARK, True)
    logging.setLogRecordFactory(record)

