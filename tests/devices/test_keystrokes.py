"""The classifier the grabbed scanner and the terminal wedge share: machine or person?"""

from hypothesis import given, settings
from hypothesis import strategies as st

from bookcorner.devices.keystrokes import Burst, Fragment, KeystrokeClassifier

GAP = 0.050


def feed(classifier, keys):
    """keys: (char or '\\n', time) pairs."""
    results = []
    for char, now in keys:
        results += classifier.enter(now) if char == "\n" else classifier.key(char, now)
    return results


def typed(text, start, per_key):
    return [(char, start + i * per_key) for i, char in enumerate(text + "\n")]


def test_a_scanner_burst_is_one_line():
    results = feed(KeystrokeClassifier(GAP), typed("9780306406157", 10.0, 0.003))
    assert results == [Burst("9780306406157", 10.0, 10.0 + 13 * 0.003)]


def test_a_child_typing_is_handed_back_key_by_key():
    classifier = KeystrokeClassifier(GAP, min_length=4)
    results = feed(classifier, typed("cat", 10.0, 0.180))
    assert [r.text for r in results] == ["c", "a", "t"]
    assert all(isinstance(r, Fragment) for r in results)
    assert results[-1].enter and results[-1].reason == "slow-enter"


def test_a_fast_pair_of_keys_and_enter_is_not_a_scan():
    classifier = KeystrokeClassifier(GAP, min_length=4)
    assert feed(classifier, typed("ok", 1.0, 0.020)) == [Fragment("ok", True, "short", 1.04)]


def test_a_double_terminator_never_makes_an_empty_scan():
    classifier = KeystrokeClassifier(GAP)
    keys = typed("ABC-123", 5.0, 0.003)
    keys.append(("\n", keys[-1][1] + 0.003))  # CR LF suffix: Enter twice
    assert feed(classifier, keys) == [Burst("ABC-123", 5.0, 5.0 + 7 * 0.003)]
    assert classifier.swallowed_terminators == 1


def test_an_enter_long_after_a_scan_is_a_persons_enter():
    classifier = KeystrokeClassifier(GAP)
    feed(classifier, typed("X1", 5.0, 0.003))
    assert classifier.enter(6.0) == [Fragment("", True, "slow-enter", 6.0)]


def test_a_pause_inside_a_scan_drops_the_part_before_it():
    classifier = KeystrokeClassifier(GAP)
    keys = [("1", 1.0), ("2", 1.003), ("3", 1.2), ("4", 1.203), ("\n", 1.206)]
    assert feed(classifier, keys) == [Fragment("12", False, "gap", 1.003), Burst("34", 1.2, 1.206)]


def test_a_clock_stepped_back_mid_scan_breaks_the_line_rather_than_joining_two():
    classifier = KeystrokeClassifier(GAP)
    keys = [("1", 100.0), ("2", 100.003), ("3", 50.0), ("\n", 50.003)]
    assert feed(classifier, keys) == [Fragment("12", False, "gap", 100.003), Burst("3", 50.0, 50.003)]


def test_keys_without_enter_expire_after_the_gap():
    classifier = KeystrokeClassifier(GAP)
    feed(classifier, [("a", 1.0), ("b", 1.003)])
    assert classifier.expire(1.02) == []
    assert classifier.expire(1.2) == [Fragment("ab", False, "unterminated", 1.003)]
    assert classifier.pending == ""


def test_an_endless_burst_is_cut_at_the_length_limit():
    classifier = KeystrokeClassifier(GAP, max_length=8)
    results = feed(classifier, [("x", i * 0.001) for i in range(10)])
    assert results == [Fragment("x" * 8, False, "overflow", 0.007)]


scan_text = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=4, max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    scans=st.lists(scan_text, min_size=1, max_size=8),
    per_key=st.floats(0.001, 0.030),
    human=st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=6), max_size=8),
)
def test_scans_between_a_persons_keys_come_out_whole(scans, per_key, human):
    """People type slowly between the scans; every scan is found exactly, nothing else is."""
    classifier = KeystrokeClassifier(GAP, min_length=4)
    keys, now = [], 0.0
    for i, scan in enumerate(scans):
        for char in human[i] if i < len(human) else "":
            now += 0.150
            keys.append((char, now))
        now += 0.200
        for char in scan + "\n":
            keys.append((char, now))
            now += per_key
    results = feed(classifier, keys)
    assert [r.text for r in results if isinstance(r, Burst)] == scans
