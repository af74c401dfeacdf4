"""Keeping the gettext catalogues in step with the code (a developer tool, uses Babel).

``python -m i18n.catalogues``          extract, merge into zh_CN, compile .mo
``python -m i18n.catalogues --check``  report untranslated or stale entries (exit 1)
"""

from __future__ import annotations

import argparse
import io
import string
import sys
from collections.abc import Sequence
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
            with path.open("wb") as fp:
                write_po(fp, catalogue, width=100, sort_output=True, include_lineno=False)
            path.with_suffix(".mo").write_bytes(compiled(read_catalogue(path, language, area)))


def _fields(text: str | Sequence[str]) -> set[str]:
    texts = (text,) if isinstance(text, str) else text
    try:
        return {name for t in texts for _lit, name, _spec, _conv in string.Formatter().parse(t) if name is not None}
    except ValueError:
        return {"<unbalanced braces>"}


def problems(areas: list[str] | None = None) -> list[str]:
    """Every marked string lacking a translation, and every .mo out of date with its .po."""
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
            mo = path.with_suffix(".mo")
            if path.exists() and (not mo.exists() or mo.read_bytes() != compiled(catalogue)):
                found.append(f"{language}/{area}: {mo.name} is stale, run scripts/i18n")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i18n.catalogues")
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
