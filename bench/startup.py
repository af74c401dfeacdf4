"""Cold start of the kiosk's screen: process start to the first interactive frame.

    python -m bench.startup [--events 100000] [--runs 5]

A data directory gets the demo school and a journal of ``--events`` events (as the kiosk
leaves it after a clean shutdown: sealed segments and a state checkpoint). Then, runs
interleaved so that they share the machine's noise:

* ``floor``: ``python -c "import textual.app"``, start to exit: no Textual app can be up
  sooner than this;
* ``kiosk``: the real ``bookcorner kiosk`` in a pseudo-terminal (80x24, so that Textual
  draws real frames), start to the moment the idle screen has been drawn *and* the desk
  is open (a scan would be answered): the kiosk writes a line to a pipe then and exits.

Peak memory is each process's own high-water mark (VmHWM). Targets (issue 4):
start-up within 2x the floor (medians), peak RSS under 80 MB. The last line printed is one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from datetime import datetime
from pathlib import Path

from bench import conclude
from bench.store import KIOSK, ZONE, history_records
from bookcorner.demo.school import build_demo_school
from bookcorner.journal.clock import SystemClock
from bookcorner.journal.journal import EVENTS_TABLE, header_record, segment_path
from bookcorner.journal.snapshot import ReferenceStore
from bookcorner.journal.storage import META_TABLE, write_new_file
from bookcorner.kiosk.desk import CirculationDesk

TARGET_RATIO = 2.0
TARGET_RSS_MB = 80.0


def write_history(journal_dir: Path, records: list[dict], segment_events: int) -> None:
    """Segments as the kiosk writes them: the header record first, then the events (in
    one further record here, to be quick), full segments sealed."""
    journal_dir.mkdir(parents=True)
    created = "2026-09-01T00:00:00+00:00"
    for start in range(0, len(records), segment_events):
        chunk = records[start:start + segment_events]
        header = header_record(KIOSK, start + 1, created)
        body: dict = {EVENTS_TABLE: {str(r["seq"]): r for r in chunk}}
        if len(chunk) == segment_events:
            body[META_TABLE] = {"1": {**header["u"][META_TABLE]["1"], "sealed": True, "last_seq": chunk[-1]["seq"],
                                      "events": len(chunk)}}
        path = segment_path(journal_dir, start + 1)
        write_new_file(path, [header, {"u": body}])
        if len(chunk) == segment_events:
            os.chmod(path, 0o444)
    if len(records) % segment_events == 0:
        write_new_file(segment_path(journal_dir, len(records) + 1), [header_record(KIOSK, len(records) + 1, created)])


def prepare(root: Path, events: int, segment_events: int) -> Path:
    """The demo school with a long history, closed cleanly (a state checkpoint); returns
    the configuration file."""
    school = build_demo_school(datetime.now(ZONE).date())
    data = root / "data"
    ReferenceStore(data / "reference").save(school.reference(), "bench", school.name)
    clock = SystemClock(ZONE)
    write_history(data / "journal", history_records(events, school, clock.boot_id), segment_events)
    with CirculationDesk(data, KIOSK, clock, segment_events=segment_events) as desk:
        desk.checkin(next(i.barcode for i in school.items if i.barcode))  # the day's last scan...
    # ...and a clean shutdown leaves a state checkpoint, so a restart replays only what follows it
    settings = root / "kiosk.toml"
    settings.write_text(f'[kiosk]\nid = "{KIOSK}"\ndata_dir = "{data}"\n[journal]\nsegment_events = {segment_events}\n'
                        '[screen]\nsound = "off"\n', encoding="utf-8")
    return settings


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BOOKCORNER_CONFIG", "TEXTUAL")}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
    return env


#: the high-water mark of this process's own memory (wait4's ru_maxrss would count the
#: parent's too: Linux carries it over fork and exec)
_PEAK = "next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))"


def floor_run() -> tuple[float, float]:
    """Seconds (start to exit) and peak MB of ``python -c "import textual.app"``."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "import textual.app"], env=_environment())
    process.wait()
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise SystemExit("bench: importing textual failed")
    peak = subprocess.run([sys.executable, "-c", f"import textual.app; print({_PEAK})"], capture_output=True,
                          text=True, env=_environment(), check=True)
    return elapsed, int(peak.stdout) / 1024


def kiosk_run(settings: Path) -> tuple[float, float]:
    """Seconds from process start to the first interactive frame, and peak MB."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    ready_read, ready_write = os.pipe()
    stop = threading.Event()

    def drain() -> None:  # the terminal's side: read what the kiosk draws, so it never blocks
        while not stop.is_set():
            readable, _w, _x = select.select([master], [], [], 0.05)
            if readable:
                try:
                    os.read(master, 65536)
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookcorner", "--config", str(settings), "kiosk", "--ready-fd", str(ready_write),
         "--exit-when-ready"],
        stdin=slave, stdout=slave, stderr=slave, pass_fds=(ready_write,), env=_environment(), start_new_session=True)
    os.close(ready_write)
    said = b""
    while not said.endswith(b"\n"):
        chunk = os.read(ready_read, 64)
        if not chunk:
            break
        said += chunk
    elapsed = time.perf_counter() - started
    process.wait()
    while chunk:
        chunk = os.read(ready_read, 64)
        said += chunk
    stop.set()
    reader.join()
    for fd in (ready_read, master, slave):
        os.close(fd)
    lines = said.decode().split()
    if not lines or lines[0] != "ready" or process.returncode:
        raise SystemExit(f"bench: the kiosk did not start (exit {process.returncode}); see its log")
    return elapsed, int(lines[-1]) / 1024  # "ready", then "peak_rss_kb N" as it exits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--segment-events", type=int, default=256)
    parser.add_argument("--dir", help="where to put the data (default: a temporary folder under the current one)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-startup-", dir=args.dir or "."))
    try:
        print(f"bench.startup: a journal of {args.events} events; {args.runs} runs each", file=sys.stderr)
        settings = prepare(root, args.events, args.segment_events)
        kiosk_run(settings)  # once to warm the page cache and write the bytecode, as a kiosk that ran before
        floors, kiosks = [], []
        for _ in range(args.runs):
            floors.append(floor_run())
            kiosks.append(kiosk_run(settings))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    floor_s = statistics.median(t for t, _m in floors)
    kiosk_s = statistics.median(t for t, _m in kiosks)
    figures = {
        "events": args.events,
        "runs": args.runs,
        "floor_import_textual_ms": round(floor_s * 1e3, 1),
        "kiosk_first_interactive_frame_ms": round(kiosk_s * 1e3, 1),
        "ratio": round(kiosk_s / floor_s, 2),
        "floor_peak_rss_mb": round(max(m for _t, m in floors), 1),
        "kiosk_peak_rss_mb": round(max(m for _t, m in kiosks), 1),
        "kiosk_runs_ms": [round(t * 1e3, 1) for t, _m in kiosks],
    }
    verdicts = [
        (f"start-up within {TARGET_RATIO:g}x the floor ({figures['ratio']}x)", figures["ratio"] <= TARGET_RATIO),
        (f"peak RSS under {TARGET_RSS_MB:g} MB ({figures['kiosk_peak_rss_mb']} MB)",
         figures["kiosk_peak_rss_mb"] < TARGET_RSS_MB),
    ]
    print(f"  import textual.app        {figures['floor_import_textual_ms']:8.1f} ms  "
          f"{figures['floor_peak_rss_mb']:6.1f} MB")
    print(f"  bookcorner kiosk, ready   {figures['kiosk_first_interactive_frame_ms']:8.1f} ms  "
          f"{figures['kiosk_peak_rss_mb']:6.1f} MB")
    return conclude(verdicts, figures, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
