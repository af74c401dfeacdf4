from tests.central.harness import central, central_sqlite, kiosk_id  # noqa: F401  (fixtures)
