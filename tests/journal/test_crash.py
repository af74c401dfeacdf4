"""Pulling the plug: 200 SIGKILLs at random instants while scans are being recorded."""

from __future__ import annotations

from bench.crash import soak


def test_no_acknowledged_event_is_lost_across_200_kills(tmp_path):
    result = soak(tmp_path / "journal", kills=200, seed=2026)
    assert result.kills == 200
    assert result.acknowledged > 1000, "the child barely wrote anything: the soak proves little"
    assert result.lost == []
    assert result.problems == []
    assert result.recorded >= result.acknowledged
