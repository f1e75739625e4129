"""Fixtures for the report tests (registered in tests/conftest.py)."""
