"""The rotation timetable: each class has a weekly borrowing slot (每班每周轮借一次);
other break times are free borrowing. Data, not code: every school's differs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time


@dataclass(frozen=True, slots=True)
class RotationSlot:
    #: Monday = 0 ... Sunday = 6
    weekday: int
    start: time
    end: time
    class_name: str

    def covers(self, moment: datetime) -> bool:
        return moment.weekday() == self.weekday and self.start <= moment.time() < self.end


@dataclass(frozen=True, slots=True)
class Timetable:
    slots: tuple[RotationSlot, ...] = ()

    def slot_at(self, moment: datetime) -> RotationSlot | None:
        """The class whose slot this is, or None for free borrowing."""
        for slot in self.slots:
            if slot.covers(moment):
                return slot
        return None
