"""A one-machine school (``bookcorner install --role both``): the kiosk paired with the central
server beside it, as a school would otherwise do by hand (README, "Pair it with the central
server"): ``[sync] server_url`` pointed at the server's own address and the credential that
``bookcorner central add-kiosk`` prints saved where the sync daemon reads it.

Found by the lab (issue 16): a ``--role both`` machine booted to a kiosk saying "sync problem",
with no server address and no credential.
"""

from __future__ import annotations

import re
import shlex
import tomllib

from bookcorner.i18n import _

#: the server's own defaults (``bookcorner central --host/--port``)
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8443
#: the addresses a server listens on that this machine reaches as 127.0.0.1
LOCAL_HOSTS = {"", "127.0.0.1", "0.0.0.0", "localhost", "::", "::1", "[::]", "[::1]"}


class PairingError(ValueError):
    """What stops the pairing, in words for the person at the terminal."""


def local_server_url(arguments: str) -> str:
    """The address this machine's kiosk reaches its central server at, from the server's
    arguments (``BOOKCORNER_CENTRAL_ARGS``): plain HTTP on 127.0.0.1 (the credential never
    leaves the machine). A server speaking HTTPS is not paired by itself: its certificate
    names the school's address, which only the school knows."""
    options: dict[str, str] = {}
    words = shlex.split(arguments)
    for index, word in enumerate(words):
        if word.startswith("--"):
            name, equals, setting = word.partition("=")
            options[name] = setting if equals else (words[index + 1] if index + 1 < len(words) else "")
    if "--certfile" in options:
        raise PairingError(_("the central server on this machine speaks HTTPS: set [sync] server_url (its address as "
                             "its certificate names it) and ca_bundle in the kiosk's settings by hand"))
    host = options.get("--host", DEFAULT_HOST)
    try:
        port = int(options.get("--port", DEFAULT_PORT))
    except ValueError:
        raise PairingError(_("the central server's --port is not a number: {port}").format(
            port=options["--port"])) from None
    if port == 0:
        raise PairingError(_("the central server listens on any free port (--port 0): give it a fixed one"))
    return f"http://{'127.0.0.1' if host in LOCAL_HOSTS else host}:{port}"


_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
_SERVER_URL = re.compile(r"^\s*server_url\s*=")


def with_server_url(text: str, url: str) -> str:
    """The kiosk's settings ``text`` with ``[sync] server_url`` set to ``url``, everything
    else (comments, order, the school's other settings) as it was. Only an empty or absent
    server_url is set: one the school wrote is theirs (:func:`server_url_of` first)."""
    lines = text.splitlines(keepends=True)
    line = f'server_url = "{url}"  # the central server on this machine (bookcorner install --role both)\n'
    section, inserted = None, False
    for number, current in enumerate(lines):
        header = _HEADER.match(current)
        if header:
            section = header.group(1)
            continue
        if section == "sync" and _SERVER_URL.match(current):
            lines[number] = line
            inserted = True
            break
    if not inserted:
        for number, current in enumerate(lines):
            header = _HEADER.match(current)
            if header and header.group(1) == "sync":
                lines.insert(number + 1, line)
                inserted = True
                break
    if not inserted:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += ["\n", "[sync]\n", line]
    changed = "".join(lines)
    if server_url_of(changed) != url:  # a layout this cannot edit safely: say so, change nothing
        raise PairingError(_("cannot set [sync] server_url in the kiosk's settings by itself: set it to {url} "
                             "by hand").format(url=url))
    return changed


def server_url_of(text: str) -> str:
    """``[sync] server_url`` as the settings ``text`` set it ("" when absent)."""
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return ""
    sync = settings.get("sync", {})
    value = sync.get("server_url", "") if isinstance(sync, dict) else ""
    return value if isinstance(value, str) else ""
