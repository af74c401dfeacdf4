"""Patrons, cards and items: the reference data a book corner circulates."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    STUDENT = "student"
    STUDENT_LIBRARIAN = "student_librarian"
    TEACHER = "teacher"
    LIBRARIAN = "librarian"


class PatronStatus(StrEnum):
    ACTIVE = "active"
    #: borrowing suspended by the librarian ("the card is withdrawn until the book comes back")
    SUSPENDED = "suspended"
    #: left the school: history kept, no new loans
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Patron:
    patron_id: str
    name: str
    role: Role
    class_name: str | None = None
    #: what the screen greets them by (a child's given name, 小明 for 王小明)
    given_name: str | None = None
    status: PatronStatus = PatronStatus.ACTIVE

    @property
    def greeting_name(self) -> str:
        return self.given_name or self.name


class CardStatus(StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    patron_id: str
    status: CardStatus = CardStatus.ACTIVE


class ItemType(StrEnum):
    CIRCULATING = "circulating"
    #: 工具书: in-room use only
    REFERENCE = "reference"
    PERIODICAL = "periodical"


class ItemStatus(StrEnum):
    AVAILABLE = "available"
    #: in the repair register until repaired
    IN_REPAIR = "in_repair"
    LOST = "lost"
    #: in the withdrawal (注销) register
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Item:
    """One physical copy. ``barcode`` is its accession label, if it has one; copies
    without a label are known by their printed ISBN, which several copies may share."""

    item_id: str
    title: str
    barcode: str | None = None
    isbn13: str | None = None
    isbn10: str | None = None
    author: str | None = None
    #: Chinese Library Classification class plus book mark, e.g. I287.5/12
    call_number: str | None = None
    item_type: ItemType = ItemType.CIRCULATING
    home_corner: str | None = None
    status: ItemStatus = ItemStatus.AVAILABLE
