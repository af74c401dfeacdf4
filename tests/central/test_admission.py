"""The Retry-After of a 429 (``central.api.admission.Admission.retry_after``), with the
clock in the test's hand: each kiosk turned away is booked a later slot, by the time a push
has been taking, and the booking never runs past the longest wait the server tells.
(On a real server: tests/sync/test_storm.py.)"""

from __future__ import annotations

from bookcorner.central.api.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_refused_kiosk_is_booked_a_slot_after_the_others_and_never_past_the_longest_wait():
    clock = Clock()
    admission = Admission(limit=4, queue=0, wait_s=0, retry_after_s=2, retry_after_max_s=10, clock=clock)
    assert admission.retry_after() == 2  # nothing measured yet: the shortest wait
    admission.push_s, admission.booked_until = 2.0, 0.0  # pushes have held a turn 2 s: one every 0.5 s
    admission.in_flight = 4
    told = [admission.retry_after() for _ in range(24)]
    assert told == sorted(told) and told[0] == 2 and told[-1] == 10  # 2 s for the turns held, then 0.5 s each
    assert told.count(10) == 24 - told.index(10)  # beyond the longest wait, everyone is told that
    assert admission.booked_until <= clock.now + 10 + 0.5
    clock.now += 60  # a minute later the kiosks told have come and gone: the booking starts afresh
    admission.in_flight = 0
    assert admission.retry_after() == 2
