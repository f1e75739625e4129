"""Fixtures for the schedule tests (registered in tests/conftest.py)."""
