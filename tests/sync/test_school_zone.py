"""The kiosks and the server count days in one zone: the server sends the school's with
the reference data, and a kiosk configured with another says so in its log."""

from __future__ import annotations

import requests

from bookcorner.central.zone import school_zone
from bookcorner.protocol.credentials import bearer
from bookcorner.protocol.messages import ReferenceDelta, decode
from tests.sync.kiosk import TestKiosk


def _configured(kiosk: TestKiosk, zone: str) -> TestKiosk:
    kiosk.config.write_text(kiosk.config.read_text().replace("[kiosk]\n", f'[kiosk]\ntimezone = "{zone}"\n', 1))
    return kiosk


def test_a_kiosk_in_another_zone_than_the_schools_says_so(central_sqlite, tmp_path):
    server = central_sqlite
    schools = school_zone(server.store).key
    token = server.add_kiosk("zone-probe-" + tmp_path.name[-6:])
    delta = decode(requests.get(f"{server.url}/v1/reference", headers=bearer(token), timeout=30).content,
                   ReferenceDelta)
    assert delta.timezone == schools
    other = "Pacific/Auckland" if schools != "Pacific/Auckland" else "Europe/London"
    ids = ["zone-same-" + tmp_path.name[-6:], "zone-other-" + tmp_path.name[-6:]]
    same, elsewhere = (TestKiosk(tmp_path / i, i, server.url, server.add_kiosk(i)) for i in ids)
    _configured(same, schools)
    _configured(elsewhere, other)
    quiet, warned = same.syncd_once(), elsewhere.syncd_once()
    assert quiet.returncode == 0 and warned.returncode == 0, warned.stderr
    assert "time zone" not in quiet.stderr
    assert f"the server counts days in the time zone {schools} but this kiosk's kiosk.timezone is {other}" \
        in warned.stderr


def test_two_names_of_one_zone_are_the_same_zone():
    """UTC and Etc/UTC count days alike: no warning for a kiosk set to one and a server to the other."""
    from bookcorner.sync.daemon import same_zone

    assert same_zone("UTC", "Etc/UTC") and same_zone("Asia/Chongqing", "Asia/Shanghai")
    assert not same_zone("Europe/London", "UTC")  # summer time
    assert not same_zone("Asia/Shanghai", "Asia/Tokyo") and not same_zone("Asia/Shanghai", "Mars/Base")
