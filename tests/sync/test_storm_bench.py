"""bench.storm in small, so that it cannot rot: 60 kiosks reconnecting within a second to a
real server push their events with the daemon's client, and the bench's own count finds
none lost and none stored twice (numbers, not timings)."""

from __future__ import annotations

import json

from bench import storm


def test_the_storm_bench_counts_every_event_once(tmp_path, capsys):
    assert storm.main(["--kiosks", "60", "--events", "10", "--window", "1", "--clients", "30",
                       "--dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["kiosks"] == 60 and result["pushes"] >= 60 and result["drain_s"] > 0
    assert result["events_lost"] == 0 and result["events_stored_twice"] == 0
    assert result["server_peak_memory_mb"] > 0
