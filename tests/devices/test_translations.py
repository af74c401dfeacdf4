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


def test_a_device_named_inside_a_message_is_worded_in_the_message_language():
    """The top bar says what is missing ("scanner …"), in each language of the screen."""
    scanner = Text.of(N_("scanner {device}"), device="vendor=05e0,product=1200")
    status = DeviceStatus("scanner:vendor=05e0,product=1200", "disconnected",
                          Text.of(N_("{device}: not connected, waiting for it"), device=scanner))
    assert status.text("en") == "scanner vendor=05e0,product=1200: not connected, waiting for it"
    assert status.text("zh_CN") == "扫描枪 vendor=05e0,product=1200：未连接，正在等待"
