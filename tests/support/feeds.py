"""Fixtures for the feeds tests (registered in tests/conftest.py)."""
