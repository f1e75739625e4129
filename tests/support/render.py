"""Fixtures for the render tests (registered in tests/conftest.py)."""
