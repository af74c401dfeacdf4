"""Running bookcorner on a Pi: the systemd units and udev rules it installs, and the
operations a teacher runs (doctor, backup and restore, install)."""
