"""A USB barcode scanner as a real kernel input device inside the guest (scenario 2).

Run as root by the installed program's Python (python-evdev is in its venv): it makes a
uinput keyboard with the USB ids and name of a common scanner (a Symbol/Zebra, 05e0:1200,
bus USB), so udev and the kiosk see it as they would see the scanner plugged in; then it
types each line written to its FIFO as a scanner does, Enter at the end. ``unplug`` destroys
the device: the kernel removes it as on a USB unplug; ``plug`` makes it again (the same program:
the cable put back, no seconds of Python starting under TCG while a child's visit waits);
``quit`` ends. It says what it did, one line each, on stdout (the agent's log file).

How fast it types. The kernel stamps each input event when the device hands it over: for a
real scanner, in the USB interrupt, one HID report (a key down, then all keys up) every poll
interval, so a scan's keys are 2 to 20 ms apart on the kernel's clock however loaded the Pi
is, and the kiosk judges its 50 ms gap on those stamps, not on when it got round to reading.
Here the "hardware" is this program: each key goes to the kernel as one write (down, SYN, up,
SYN: what two HID reports make), then it sleeps ``KEY_GAP_MS`` (default 2: two reports at a
1 ms poll interval), which gives the kiosk's reader the time a real scanner gives it (keys
written back to back can fill the kernel's 64-event buffer before a reader starved under TCG
runs: the kiosk then rightly drops the scan as "input events lost"). Under TCG on a busy host
a sleep can stretch past 50 ms, which a USB interrupt never does, and the kiosk then rightly
splits the scan; so the longest interval between two keys' writes is printed with each scan,
and the lab types a scan again only when that interval shows the writer was late.

    python guest_scanner.py FIFO [KEY_GAP_MS]
"""

import os
import struct
import sys
import time

import evdev
from evdev import ecodes as e

NAME = "Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner"
VENDOR, PRODUCT, VERSION = 0x05E0, 0x1200, 0x0100
#: what a USB keyboard interface announces (a scanner's does): every key of a full keyboard
KEYS = list(range(e.KEY_ESC, e.KEY_MICMUTE + 1))
DIGITS = {str(n): getattr(e, f"KEY_{n}") for n in range(10)}


def keys_of(text: str) -> list[tuple[int, bool]]:
    """(key code, shift) for each character: digits, letters (upper case with Shift), '-'."""
    typed = []
    for char in text:
        if char in DIGITS:
            typed.append((DIGITS[char], False))
        elif char.isalpha():
            typed.append((getattr(e, f"KEY_{char.upper()}"), char.isupper()))
        elif char == "-":
            typed.append((e.KEY_MINUS, False))
        else:
            raise ValueError(f"cannot type {char!r}")
    return [*typed, (e.KEY_ENTER, False)]


def key_bytes(code: int, shift: bool) -> bytes:
    """The input_event records of one key: down, SYN, up, SYN (Shift around them for a capital).
    The timeval in each is left 0: the kernel stamps the events itself when they are written."""
    events = [(e.EV_KEY, e.KEY_LEFTSHIFT, 1)] if shift else []
    events += [(e.EV_KEY, code, 1), (e.EV_SYN, e.SYN_REPORT, 0), (e.EV_KEY, code, 0)]
    events += [(e.EV_KEY, e.KEY_LEFTSHIFT, 0)] if shift else []
    events += [(e.EV_SYN, e.SYN_REPORT, 0)]
    return b"".join(struct.pack("llHHi", 0, 0, kind, key, value) for kind, key, value in events)


def main() -> None:
    fifo = sys.argv[1]
    gap = (float(sys.argv[2]) if len(sys.argv) > 2 else 2.0) / 1000
    if not os.path.exists(fifo):
        os.mkfifo(fifo, 0o600)
    device: evdev.UInput | None = plug()
    # opened read-write (O_RDWR: the FIFO never reports end of file between two writers), read as
    # text by a plain reader (a FIFO cannot seek, which open()'s "r+" wants)
    with os.fdopen(os.open(fifo, os.O_RDWR), "r", encoding="ascii") as commands:
        for line in commands:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "unplug" and device is not None:
                device.close()
                device = None
                print("unplugged", flush=True)
            elif words[0] == "plug" and device is None:
                device = plug()
            elif words[0] == "type" and device is None:
                print(f"not plugged in: {words[1]} not typed", flush=True)
            elif words[0] == "type" and device is not None:
                # each key's records made before the first is typed: the loop only writes and sleeps
                keys = [key_bytes(code, shift) for code, shift in keys_of(words[1])]
                began = last = time.monotonic()
                longest = 0.0
                for key in keys:
                    now = time.monotonic()
                    longest = max(longest, now - last)
                    os.write(device.fd, key)
                    last = now
                    if gap:
                        time.sleep(gap)
                print(f"typed {words[1]} in {1000 * (time.monotonic() - began):.0f} ms, "
                      f"longest between two keys {1000 * longest:.1f} ms", flush=True)
    if device is not None:
        device.close()
        print("unplugged", flush=True)


def plug() -> evdev.UInput:
    """The scanner's cable plugged in: the kernel makes its input device (unplug: closing it)."""
    device = evdev.UInput({e.EV_KEY: KEYS}, name=NAME, vendor=VENDOR, product=PRODUCT, version=VERSION,
                          bustype=e.BUS_USB)
    print(f"plugged {device.device.path}", flush=True)
    return device

if __name__ == "__main__":
    main()
