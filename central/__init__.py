"""The central server: takes every kiosk's events exactly once, replays them into the
school's loans, keeps what did not apply cleanly for the librarian, and serves the
reference data kiosks decide with (``bookcorner central``).

It knows kiosks only through the wire protocol (``protocol``); it uses the pure
circulation domain for event type names and for loading a school's reference data.
Needs the ``central`` extra's libraries, pinned in ``deploy/requirements-central.txt``.
"""
