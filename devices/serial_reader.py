"""Serial RFID card readers: open the port, decode, debounce, reconnect after unplug.

Readers that push frames (RDM6300, ID-12LA, ASCII lines) are read continuously; a PN532 is
woken, configured and polled. Rejected frames are counted by reason (``counters``) and,
when asked, reported as warnings; a card held on the reader is one :class:`CardTap`.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import Any

from bookcorner.devices.cardid import mifare_card_id
from bookcorner.devices.config import DevicesConfig
from bookcorner.devices.debounce import Debouncer
from bookcorner.devices.events import CardTap, Sink, Text
from bookcorner.devices.protocols import CardRead, Decoded, Rejected, push_decoder
from bookcorner.devices.reader import ReaderThread
from bookcorner.i18n import N_

READ_TIMEOUT = 0.05
PN532_FAILURES_BEFORE_RESET = 3


def open_serial(port: str, baudrate: int) -> Any:
    """The port as pyserial opens it (a device path or a URL such as ``loop://``)."""
    import serial

    return serial.serial_for_url(port, baudrate=baudrate, timeout=READ_TIMEOUT, exclusive=True)


class SerialCardReader(ReaderThread):
    def __init__(self, config: DevicesConfig, sink: Sink, open_port: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, report_rejects: bool = False) -> None:
        self.config = config
        self.reader = config.reader
        super().__init__(f"reader:{self.reader.port}", sink, clock)
        self._open_port = open_port or (lambda: open_serial(self.reader.port, self.reader.baudrate))
        self.debouncer = Debouncer(config.card_hold_off)
        self.report_rejects = report_rejects

    def serve(self) -> None:
        import serial

        port_name = self.reader.port
        try:
            port = self._open_port()
        except (serial.SerialException, OSError, ValueError) as error:
            self._cannot_open(port_name, error)
            self.wait(self.reader.reconnect_interval_s)
            return
        try:
            if self.reader.protocol == "pn532":
                self._poll_pn532(port)
            else:
                self._read_pushed(port)
        except (serial.SerialException, OSError) as error:
            self.counters["disconnects"] += 1
            self.status("disconnected", Text.of(N_("card reader {port}: disconnected ({error})"), port=port_name, error=error))
        finally:
            try:
                port.close()
            except Exception:  # noqa: BLE001, S110  (the port just failed: whatever closing it raises, the reader reconnects)
                pass
        self.wait(self.reader.reconnect_interval_s)

    def _cannot_open(self, port: str, error: BaseException) -> None:
        code = getattr(error, "errno", None)
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO):
            self.status("disconnected", Text.of(N_("card reader {port}: not connected, waiting for it"), port=port))
        elif code in (errno.EACCES, errno.EPERM):
            self.status("error", Text.of(N_("card reader {port}: no permission to open it; add the kiosk user to the 'dialout' group (sudo usermod -aG dialout USER, then log in again)"), port=port))
        elif code == errno.EBUSY or "lock" in str(error).lower():
            self.status("error", Text.of(N_("card reader {port}: in use by another program (a serial console or a second kiosk?)"), port=port))
        else:
            self.status("error", Text.of(N_("card reader {port}: cannot open it: {error}"), port=port, error=error))

    # -- readers that push frames ---------------------------------------------------
    def _read_pushed(self, port: Any) -> None:
        decoder = push_decoder(self.reader.protocol, self.config.card_id_format, self.reader.ascii_format)
        self.counters["connects"] += 1
        self.status("connected", Text.of(N_("card reader {port}: ready ({protocol})"), port=self.reader.port, protocol=self.reader.protocol))
        while not self.stopping:
            data = port.read(max(1, port.in_waiting))
            self._handle(decoder.feed(data) if data else decoder.idle())

    def _handle(self, results: list[Decoded]) -> None:
        for result in results:
            if isinstance(result, CardRead):
                self._card(result.card_id)
            elif isinstance(result, Rejected):
                self._rejected(result)

    def _card(self, card_id: str) -> None:
        now = self.clock()
        self.counters["frames"] += 1
        if self.debouncer.tap(card_id, now):
            self.counters["taps"] += 1
            self.emit(CardTap(card_id, self.source, now))

    def _rejected(self, rejected: Rejected) -> None:
        self.counters[f"rejected-{rejected.code}"] += 1
        if self.report_rejects:
            self.status("warning", rejected.message)

    # -- PN532 ----------------------------------------------------------------------
    def _poll_pn532(self, port: Any) -> None:
        from bookcorner.devices.protocols.pn532 import Pn532, Pn532Error

        chip = Pn532(port, self.counters, clock=self.clock)
        try:
            chip.wake()
            version = chip.firmware_version()
            chip.limit_retries()
        except Pn532Error as error:
            self.counters["pn532-no-answer"] += 1
            self.status("error", Text.of(N_("card reader {port}: the PN532 does not answer ({error}); check power, TX/RX crossed over, and the mode switches set to HSU/UART"), port=self.reader.port, error=error.message))
            return
        self.counters["connects"] += 1
        self.status("connected", Text.of(N_("card reader {port}: ready ({version})"), port=self.reader.port, version=version))
        failures = 0
        interval = self.reader.poll_interval_ms / 1000
        while not self.stopping:
            started = self.clock()
            try:
                uid = chip.poll()
            except Pn532Error as error:
                failures += 1
                self.counters["pn532-poll-failed"] += 1
                if failures >= PN532_FAILURES_BEFORE_RESET:
                    self.status("error", Text.of(N_("card reader {port}: the PN532 stopped answering ({error}); waking it again"), port=self.reader.port, error=error.message))
                    return
                continue
            failures = 0
            if uid is not None:
                self._card(mifare_card_id(uid))
            self.wait(interval - (self.clock() - started))
