"""The power-cut driver inside the guest (scenario 3), run by the installed program's Python as
the kiosk's user while the kiosk's screen is stopped: it records loans and returns through the
kiosk's own desk (identify, borrow, give back: the journal and the rules, as ``bookcorner circ``
and the screen do) and, as soon as each call returns (when the kiosk would say "done"), tells
the host each event's id over the virtio-serial port lab.acks.

Before each acknowledgement it also appends the id to a control file *without* fsync (the
negative control): after a cut, ids missing there show the cut really drops what was not made
durable, so a journal with nothing missing means something.

Anything that stops it (a desk whose calls were renamed, a refused card) is sent as an
``error`` line, so the host stops instead of cutting power over a driver that records nothing.
``tests/lab/test_guest_driver.py`` runs it on the host against the demo school, so a change to
the desk that breaks it fails the suite, not a lab run hours later.
"""

import os
import sys
import time
from zoneinfo import ZoneInfo

from bookcorner import config
from bookcorner.circulation.codes import Source
from bookcorner.circulation.rules import Identified
from bookcorner.journal.clock import SystemClock
from bookcorner.kiosk.desk import CirculationDesk

CARD, BOOK = sys.argv[1], sys.argv[2]
CONTROL = os.environ.get("LAB_CONTROL", "/var/lib/bookcorner/lab-control")
#: rounds (a loan and its return) before stopping; 0: until QEMU is killed
ROUNDS = int(os.environ.get("LAB_ROUNDS", "0"))


def main() -> None:
    settings = config.load(os.environ.get("BOOKCORNER_CONFIG", "/etc/bookcorner/kiosk.toml"))
    desk = CirculationDesk(settings.data_dir, settings.kiosk.id, SystemClock(ZoneInfo(settings.kiosk.timezone)),
                           segment_events=settings.journal.segment_events, policy=config.policy_of(settings),
                           calendar=config.calendar_of(settings))
    acks = 3  # /dev/virtio-ports/lab.acks, opened by root for this user
    control = open(CONTROL, "a", encoding="ascii")  # noqa: SIM115
    os.write(acks, b"started\n")
    rounds = 0
    while not ROUNDS or rounds < ROUNDS:
        rounds += 1
        who = desk.identify(CARD, Source.CARD_READER)
        if not isinstance(who, Identified):
            raise SystemExit(f"the card {CARD} was not taken: {who}")
        recorded = [desk.checkout(who, BOOK), desk.checkin(BOOK, who)]
        events = [event for result in recorded for event in result.events]
        if not events:
            raise SystemExit(f"a loan and return of {BOOK} recorded nothing: {recorded}")
        for event in events:
            control.write(f"{event.event_id}\n")
            control.flush()  # to the guest's page cache, never fsynced
            os.write(acks, f"ack {event.event_id} {event.seq}\n".encode())
        time.sleep(0.05)
    os.write(acks, b"done\n")


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # told to the host, which stops the soak and says why
        os.write(3, f"error {type(error).__name__}: {error}".replace("\n", " ").encode()[:2000] + b"\n")
        raise
