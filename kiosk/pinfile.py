"""Writing the librarian's PIN hash into the configuration file, keeping everything else
in it (comments included) as it was."""

from __future__ import annotations

import os
import re
from pathlib import Path

_SECTION = re.compile(r"^\s*\[librarian\]\s*(#.*)?$")
_ANY_SECTION = re.compile(r"^\s*\[")
_PIN_LINE = re.compile(r"^\s*pin_hash\s*=")


def with_pin_hash(text: str, hashed: str) -> str:
    """The configuration text with ``[librarian] pin_hash`` set to ``hashed``."""
    line = f'pin_hash = "{hashed}"'
    lines = text.splitlines()
    start = next((i for i, row in enumerate(lines) if _SECTION.match(row)), None)
    if start is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{tail}\n[librarian]\n{line}\n"
    end = next((i for i in range(start + 1, len(lines)) if _ANY_SECTION.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if _PIN_LINE.match(lines[i]):
            lines[i] = line
            break
    else:
        lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


def write_pin_hash(path: Path, hashed: str) -> None:
    """Set the hash in the file at ``path`` (created if missing), checked before it is
    saved, replaced whole (never half-written), keeping the file's permissions."""
    from bookcorner import config

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = with_pin_hash(text, hashed)
    config.parse(updated, str(path))
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(updated)
        out.flush()
        os.fsync(out.fileno())
    if path.exists():
        os.chmod(temporary, path.stat().st_mode & 0o7777)
    else:
        os.chmod(temporary, 0o640)
    os.replace(temporary, path)
