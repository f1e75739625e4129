"""Alembic migrations, shipped in the package and applied by `newsletter db upgrade` and on first use."""
