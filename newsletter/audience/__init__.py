"""The audience: mailing lists and their subscribers."""
