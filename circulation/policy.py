"""The loan policy matrix: patron role x item type.

Defaults are what the schools' own documents say (../shared/DOMAIN.md): two books per
student, one week, reference books never leave the room, an overdue book blocks borrowing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from bookcorner.circulation.model import ItemType, Role


@dataclass(frozen=True, slots=True)
class LoanRule:
    """What one role may do with one item type."""

    loanable: bool = True
    loan_days: int = 7
    renewals: int = 1
    #: a cap on loans of this item type alone (None: only the role's total applies)
    max_loans: int | None = None


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """What applies to a role whatever the item."""

    max_loans: int = 2
    block_when_overdue: bool = True
    #: may borrow under a holiday-loan arrangement (due after the holiday)
    holiday_loans: bool = True


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Policy:
    roles: Mapping[Role, RolePolicy] = field(default_factory=dict)
    #: fully resolved: one rule for every (role, item type)
    rules: Mapping[tuple[Role, ItemType], LoanRule] = field(default_factory=dict)

    def role(self, role: Role) -> RolePolicy:
        return self.roles.get(role, RolePolicy())

    def rule(self, role: Role, item_type: ItemType) -> LoanRule:
        return self.rules.get((role, item_type), LoanRule())


def build_policy(
    roles: Mapping[Role, RolePolicy],
    item_defaults: Mapping[ItemType, LoanRule],
    overrides: Mapping[tuple[Role, ItemType], Mapping[str, Any]] = MappingProxyType({}),
) -> Policy:
    """Resolve the matrix: each cell starts from its item type's rule, then the
    (role, item type) override's fields replace those they name."""
    rules: dict[tuple[Role, ItemType], LoanRule] = {}
    for role in Role:
        for item_type in ItemType:
            rule = item_defaults.get(item_type, LoanRule())
            changes = overrides.get((role, item_type))
            if changes:
                rule = replace(rule, **changes)
            rules[(role, item_type)] = rule
    all_roles = {role: roles.get(role, RolePolicy()) for role in Role}
    return Policy(roles=_frozen(all_roles), rules=_frozen(rules))


#: per role, whatever the item (../shared/DOMAIN.md: two books, overdue blocks)
DEFAULT_ROLES: Mapping[Role, RolePolicy] = _frozen({
    Role.STUDENT: RolePolicy(max_loans=2, block_when_overdue=True),
    Role.STUDENT_LIBRARIAN: RolePolicy(max_loans=2, block_when_overdue=True),
    Role.TEACHER: RolePolicy(max_loans=10, block_when_overdue=False),
    Role.LIBRARIAN: RolePolicy(max_loans=20, block_when_overdue=False),
})
#: per item type, for every role (one week; reference books never leave the room)
DEFAULT_ITEMS: Mapping[ItemType, LoanRule] = _frozen({
    ItemType.CIRCULATING: LoanRule(loan_days=7, renewals=1),
    ItemType.REFERENCE: LoanRule(loanable=False, loan_days=0, renewals=0),
    ItemType.PERIODICAL: LoanRule(loan_days=7, renewals=0),
})
#: the cells where a role differs from its item type's rule
DEFAULT_OVERRIDES: Mapping[tuple[Role, ItemType], Mapping[str, object]] = _frozen({
    (Role.TEACHER, ItemType.CIRCULATING): {"loan_days": 28, "renewals": 2},
    (Role.LIBRARIAN, ItemType.CIRCULATING): {"loan_days": 28, "renewals": 2},
    (Role.TEACHER, ItemType.PERIODICAL): {"loan_days": 14},
    (Role.LIBRARIAN, ItemType.PERIODICAL): {"loan_days": 14},
})
DEFAULT_POLICY = build_policy(DEFAULT_ROLES, DEFAULT_ITEMS, DEFAULT_OVERRIDES)
