"""bookcorner: an offline-first circulation kiosk for classroom book corners."""

__version__ = "0.1.0"
