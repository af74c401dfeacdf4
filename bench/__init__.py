"""Benchmarks and soaks: run from the repository root as ``python -m bench.<name>``."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO


def conclude(verdicts: list[tuple[str, bool]], figures: Any, *, strict: bool = False,
             verdict_file: TextIO | None = None) -> int:
    """Every target met or MISSED, then the figures as the last line (JSON); the exit code
    is 1 only when ``strict`` and a target was missed."""
    for text, met in verdicts:
        print(f"  [{'met' if met else 'MISSED'}] {text}", file=verdict_file or sys.stdout)
    print(json.dumps(figures))
    return 1 if strict and not all(met for _text, met in verdicts) else 0
