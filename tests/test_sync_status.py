from bookcorner.sync.status import Phase, SyncStatus, read_status, request_sync, take_wake_request, write_status


def test_the_kiosk_reads_what_the_daemon_wrote_and_can_ask_for_a_sync(tmp_path):
    assert read_status(tmp_path) == SyncStatus()
    write_status(tmp_path, SyncStatus(phase=Phase.IDLE, acked_seq=41, last_success="2026-11-23T12:50:00+08:00"))
    status = read_status(tmp_path)
    assert status.phase is Phase.IDLE and status.waiting(45) == 4
    assert take_wake_request(tmp_path) is False
    request_sync(tmp_path)
    request_sync(tmp_path)
    assert take_wake_request(tmp_path) is True and take_wake_request(tmp_path) is False


def test_a_damaged_status_file_is_shown_as_an_error_not_as_all_synced(tmp_path):
    write_status(tmp_path, SyncStatus(phase=Phase.IDLE, acked_seq=3))
    (tmp_path / "sync" / "status.db").write_bytes(b"")
    (tmp_path / "sync" / "status.db.prev").write_bytes(b"")
    assert read_status(tmp_path).phase is Phase.ERROR
