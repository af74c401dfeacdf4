"""The kiosk configuration: the example is complete and valid, mistakes are named."""

from __future__ import annotations

import re
from datetime import date

import pytest

from bookcorner import config
from bookcorner.circulation.model import ItemType, Role


def test_the_example_file_is_valid_and_matches_the_defaults():
    example = config.load(config.EXAMPLE)
    assert example == config.load(None)


def test_the_commented_policy_and_calendar_in_the_example_are_valid_too():
    text = config.EXAMPLE.read_text()
    uncommented = re.sub(r"^# ?(\[|[a-z_]+ =)", r"\1", text, flags=re.MULTILINE)
    parsed = config.parse(uncommented, "example (uncommented)")
    policy = config.policy_of(parsed)
    assert policy.role(Role.STUDENT).max_loans == 2
    assert policy.rule(Role.TEACHER, ItemType.CIRCULATING).loan_days == 28
    calendar = config.calendar_of(parsed)
    assert not calendar.is_open(date(2026, 10, 3)) and calendar.terms[0].end == date(2027, 1, 15)


def test_a_kiosk_config_only_changes_what_it_names():
    parsed = config.parse("[policy.roles.student]\nmax_loans = 3\n[policy.items.circulating]\nloan_days = 14\n")
    policy = config.policy_of(parsed)
    assert policy.role(Role.STUDENT).max_loans == 3
    assert policy.rule(Role.STUDENT, ItemType.CIRCULATING).loan_days == 14
    assert policy.rule(Role.TEACHER, ItemType.CIRCULATING).loan_days == 28  # the teachers' own rule stays
    assert not policy.rule(Role.STUDENT, ItemType.REFERENCE).loanable
    assert config.calendar_of(parsed) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[kiosk]\nidd = 'x'", "kiosk.toml: kiosk.idd: unknown option"),
        ("[journal]\nsegment_events = 1", "kiosk.toml: journal.segment_events: Expected `int` >= 16"),
        ("[kiosk]\nlanguage = 'fr'", "kiosk.toml: kiosk.language"),
        ("[kiosk]\ntimezone = 'Mars/Base'", "kiosk.toml: kiosk.timezone: unknown time zone 'Mars/Base'"),
        ("[kiosk]\nid = 'has space'", "kiosk.toml: kiosk.id"),
        ("[policy.roles.pupil]\nmax_loans = 2", "kiosk.toml: policy.roles: Invalid enum value 'pupil'"),
        ("[calendar]\nclosed_weekdays = ['funday']", "kiosk.toml: calendar.closed_weekdays[0]"),
        ("[[calendar.terms]]\nname = 'x'\nstart = 2027-01-01\nend = 2026-01-01", "ends (2026-01-01) before it starts"),
        ("[kiosk\n", "kiosk.toml: not valid TOML"),
    ],
)
def test_a_wrong_value_is_named_with_its_file_and_option(text, message):
    with pytest.raises(config.ConfigError) as raised:
        config.parse(text, "kiosk.toml")
    assert message in str(raised.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(config.ConfigError, match="configuration file not found"):
        config.load(tmp_path / "nope.toml")


#: a kiosk.toml written for a release before the options' renaming (lendable, lend_from, lend_until)
OLD_NAMES = """
[policy.items.reference]
lendable = true
[[policy.overrides]]
role = "teacher"
item_type = "periodical"
lendable = false
[calendar]
[[calendar.terms]]
name = "2026 autumn"
start = 2026-09-01
end = 2027-01-15
[[calendar.holiday_loans]]
name = "winter holiday"
lend_from = 2027-01-04
lend_until = 2027-01-15
due = 2027-02-22
"""


def test_a_file_with_the_old_option_names_still_loads_as_with_the_new(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text(OLD_NAMES)
    old = config.load(path)
    new = config.parse(OLD_NAMES.replace("lendable", "loanable").replace("lend_from", "checkout_from")
                       .replace("lend_until", "checkout_until"))
    assert old == new
    policy = config.policy_of(old)
    assert policy.rule(Role.STUDENT, ItemType.REFERENCE).loanable
    assert not policy.rule(Role.TEACHER, ItemType.PERIODICAL).loanable
    [window] = config.calendar_of(old).holiday_loans
    assert (window.checkout_from, window.checkout_until, window.due) == (date(2027, 1, 4), date(2027, 1, 15),
                                                                         date(2027, 2, 22))


def test_an_option_given_under_its_old_and_its_new_name_is_refused():
    with pytest.raises(config.ConfigError) as raised:
        config.parse("[policy.items.reference]\nlendable = true\nloanable = false\n", "kiosk.toml")
    assert "kiosk.toml: policy.items.reference: both lendable and loanable are given" in str(raised.value)
