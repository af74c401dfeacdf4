"""Screenshots of the kiosk's main screens in both languages, for people to look at.

    .venv/bin/python -m tests.kiosk.ui.screenshots [--size 100x30] [--out artifacts]

Writes SVGs (and PNGs when Debian's rsvg-convert is installed) into ``artifacts/`` (not kept in git).
The same scenes are the SVG snapshot tests (test_snapshots.py).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from bookcorner import i18n
from tests.kiosk.ui import scenes


async def shoot(name: str, language: str, size: tuple[int, int], out: Path) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        app = scenes.app_for(name, Path(folder), language)
        async with app.run_test(size=size) as pilot:
            await scenes.SCENES[name](pilot)
            await pilot.pause()
            svg = app.export_screenshot(title=f"bookcorner · {name} · {language}")
    path = out / f"{name}-{language}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="100x30")
    parser.add_argument("--out", default="artifacts")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    converter = shutil.which("rsvg-convert")  # Debian's librsvg2-bin: falls back to a CJK font per glyph
    for name in args.names or scenes.SCENES:
        for language in ("en", "zh_CN"):
            path = asyncio.run(shoot(name, language, (width, height), out))
            i18n.use_language("en")
            if converter:
                subprocess.run([converter, "-w", "1400", str(path), "-o", str(path.with_suffix(".png"))], check=True)
            print(path)


if __name__ == "__main__":
    main()
