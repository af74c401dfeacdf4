"""Keeping the gettext catalogues in step with the code (a developer tool, uses Babel).

``python -m bookcorner.i18n.catalogues``          extract, merge into zh_CN, compile .mo
``python -m bookcorner.i18n.catalogues --check``  report untranslated or stale entries (exit 1)
"""

from __future__ import annotations

import argparse
import io
import string
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "i18n" / "locale"
TRANSLATED = ("zh_CN",)

# One catalogue per area of the program, so that areas can be worked on independently.
AREAS: dict[str, tuple[str, ...]] = {
    "core": ("bookcorner", "circulation", "journal", "config", "demo"),
    "devices": ("devices",),
    "kiosk": ("kiosk",),
    "sync": ("sync",),
    "central": ("central",),
    "ops": ("ops",),
}
#: Python modules, and the dashboard's Jinja2 templates (their {{ _("...") }} calls)
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "bilingual": None}


def extract(area: str) -> Catalog:
    catalogue = Catalog(project="bookcorner", domain=area)
    for folder in AREAS[area]:
        path = ROOT / folder
        if not path.is_dir():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            str(path), method_map=METHODS, keywords=KEYWORDS
        ):
            catalogue.add(message, locations=[(f"{folder}/{filename}", lineno)], auto_comments=comments, context=context)
    return catalogue


def po_path(language: str, area: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{area}.po"


def read_catalogue(path: Path, language: str, area: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=language, domain=area, project="bookcorner")
    with path.open("rb") as fp:
        return read_po(fp, locale=language, domain=area)


def compiled(catalogue: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    return buffer.getvalue()


#: header fields that name the tool that wrote a file, not what the catalogue says: each Babel
#: release writes its own version there, so comparing them would fail on a newer Babel alone
GENERATOR_FIELDS = (b"Generated-By:",)


def _without_generator(header: bytes) -> bytes:
    """A .mo header, or a whole .po file (its header lines are quoted), less those fields."""
    return b"\n".join(line for line in header.split(b"\n") if not line.lstrip(b'"').startswith(GENERATOR_FIELDS))


def mo_content(data: bytes) -> dict[bytes, bytes]:
    """What a compiled catalogue says: each original (with its context and plural) and its
    translation, as gettext reads them (GNU .mo layout), and the header less the generator's
    fields. Two .mo files with the same content translate every message alike."""
    if len(data) < 28:
        raise ValueError("not a .mo file: too short")
    order = {0x950412DE: "<", 0xDE120495: ">"}.get(struct.unpack("<I", data[:4])[0])
    if order is None:
        raise ValueError("not a .mo file: bad magic number")
    _revision, count, originals, translations = struct.unpack_from(order + "4I", data, 4)
    content = {}
    for index in range(count):
        id_length, id_at = struct.unpack_from(order + "2I", data, originals + 8 * index)
        text_length, text_at = struct.unpack_from(order + "2I", data, translations + 8 * index)
        content[data[id_at:id_at + id_length]] = data[text_at:text_at + text_length]
    if b"" in content:
        content[b""] = _without_generator(content[b""])
    return content


def _po_text(catalogue: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalogue, width=100, sort_output=True, include_lineno=False)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes, same: Callable[[bytes, bytes], bool]) -> None:
    """Writes ``data`` unless the file already says the same (``same(old, new)``): running
    scripts/i18n with another Babel release does not churn every catalogue's header."""
    if path.exists():
        try:
            if same(path.read_bytes(), data):
                return
        except ValueError:  # an unreadable old file is replaced
            pass
    path.write_bytes(data)


def update(areas: list[str] | None = None) -> None:
    for area in areas or AREAS:
        template = extract(area)
        for language in TRANSLATED:
            path = po_path(language, area)
            catalogue = read_catalogue(path, language, area)
            template.creation_date = catalogue.creation_date  # no churn when nothing changed
            catalogue.update(template, no_fuzzy_matching=True)
            catalogue.obsolete.clear()
            if not len(catalogue) and not path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_if_changed(path, _po_text(catalogue), lambda old, new: _without_generator(old) == _without_generator(new))
            _write_if_changed(path.with_suffix(".mo"), compiled(read_catalogue(path, language, area)),
                              lambda old, new: mo_content(old) == mo_content(new))


def _fields(text: str | Sequence[str]) -> set[str]:
    texts = (text,) if isinstance(text, str) else text
    try:
        return {name for t in texts for _lit, name, _spec, _conv in string.Formatter().parse(t) if name is not None}
    except ValueError:
        return {"<unbalanced braces>"}


def problems(areas: list[str] | None = None) -> list[str]:
    """Every marked string lacking a translation, every entry no string in the code asks for
    any more, and every .mo whose messages differ from its .po's (compared by content: the
    header field naming the Babel release that compiled it does not count)."""
    found: list[str] = []
    for area in areas or AREAS:
        template = extract(area)
        for language in TRANSLATED:
            path = po_path(language, area)
            catalogue = read_catalogue(path, language, area)
            for message in template:
                if not message.id:
                    continue
                translated = catalogue.get(message.id, context=message.context)
                if translated is None or not translated.string or (
                    isinstance(translated.string, tuple) and not all(translated.string)
                ):
                    where = ", ".join(f"{f}:{n}" for f, n in message.locations)
                    found.append(f"{language}/{area}: no translation for {message.id!r} ({where})")
                elif translated.fuzzy:
                    found.append(f"{language}/{area}: fuzzy translation for {message.id!r}")
                elif _fields(message.id) != _fields(translated.string):
                    found.append(f"{language}/{area}: {{placeholders}} differ in the translation of {message.id!r}")
            for entry in catalogue:
                if entry.id and template.get(entry.id, context=entry.context) is None:
                    found.append(f"{language}/{area}: stale entry {entry.id!r}: no string in the code asks for it, run scripts/i18n")
            mo = path.with_suffix(".mo")
            if path.exists() and not (mo.exists() and _same_mo(mo.read_bytes(), compiled(catalogue))):
                found.append(f"{language}/{area}: {mo.name} is stale, run scripts/i18n")
    return found


def _same_mo(old: bytes, new: bytes) -> bool:
    try:
        return mo_content(old) == mo_content(new)
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bookcorner.i18n.catalogues")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--area", action="append", choices=sorted(AREAS), help="only this area (repeatable)")
    args = parser.parse_args(argv)
    if not args.check:
        update(args.area)
    issues = problems(args.area)
    for line in issues:
        print(line)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
