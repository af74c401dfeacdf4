"""The kiosk's screens: idle, a child's session, the student librarian's duty, the
librarian's mode, and the small dialogs on top of them."""
