"""The sync daemon's side of the kiosk: ships journal events to the central server and
brings reference data back. It runs as its own process (``bookcorner syncd``); the
kiosk talks to it only through the files in ``<data_dir>/sync/`` (see ``status``)."""
