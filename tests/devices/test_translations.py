"""Device messages reach a Chinese-reading librarian intact."""

from bookcorner.devices.events import DeviceStatus, Text
from bookcorner.i18n import N_, catalogues


def test_every_device_message_has_a_chinese_translation_with_its_placeholders():
    assert catalogues.problems(["devices"]) == []


def test_a_status_is_shown_in_either_language():
    status = DeviceStatus("reader:/dev/ttyUSB0", "disconnected",
                          Text.of(N_("card reader {port}: not connected, waiting for it"), port="/dev/ttyUSB0"))
    assert status.text("en") == "card reader /dev/ttyUSB0: not connected, waiting for it"
    assert status.text("zh_CN") == "读卡器 /dev/ttyUSB0：未连接，正在等待"
