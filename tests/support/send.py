"""Fixtures for the send tests (registered in tests/conftest.py)."""
