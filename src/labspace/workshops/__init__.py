"""Workshops and classes: pre-made attendee accounts with readable passwords and one-click
login links, a printable credential sheet, and an expiry that disables them together."""
