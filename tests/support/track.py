"""Fixtures for the track tests (registered in tests/conftest.py)."""
