"""The power-cut driver inside the guest (scenario 3), run by the installed program's Python as
the kiosk's user while the kiosk's screen is stopped: it records loans and returns through the
kiosk's own desk (identify, borrow, give back: the journal and the rules, as ``bookcorner circ``
and the screen do) and, as soon as each call returns (when the kiosk would say "done"), tells
the host each event's id over the virtio-serial port lab.acks.

Before each acknowledgement it also appends the id to a control file *without* fsync (the
negative control): after a cut, ids missing there show the cut really drops what was not made
durable, so a journal with nothing missing means something.
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
CONTROL = "/var/lib/bookcorner/lab-control"


def main() -> None:
    settings = config.load("/etc/bookcorner/kiosk.toml")
    desk = CirculationDesk(settings.data_dir, settings.kiosk.id, SystemClock(ZoneInfo(settings.kiosk.timezone)),
                           segment_events=settings.journal.segment_events, policy=config.policy_of(settings),
                           calendar=config.calendar_of(settings))
    acks = 3  # /dev/virtio-ports/lab.acks, opened by root for this user
    control = open(CONTROL, "a", encoding="ascii")  # noqa: SIM115
    os.write(acks, b"started\n")
    idle = 0
    while idle < 20:
        recorded = []
        who = desk.identify(CARD, Source.CARD_READER)
        if isinstance(who, Identified):
            recorded.append(desk.borrow(who, BOOK))
            recorded.append(desk.give_back(BOOK, who))
        else:
            recorded.append(who)
        events = [event for result in recorded for event in result.events]
        idle = 0 if events else idle + 1
        for event in events:
            control.write(f"{event.event_id}\n")
            control.flush()  # to the guest's page cache, never fsynced
            os.write(acks, f"ack {event.event_id} {event.seq}\n".encode())
        time.sleep(0.05)
    os.write(acks, b"no-events\n")


if __name__ == "__main__":
    main()
