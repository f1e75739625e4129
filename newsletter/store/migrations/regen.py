"""Rewrite the initial migration from `tables.py` (development only, until the first release).

python -m newsletter.store.migrations.regen
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from newsletter.store import Store
from newsletter.store.migrate import MIGRATIONS, alembic_config

INITIAL = MIGRATIONS / "versions" / "0001_initial.py"


def main() -> None:
    INITIAL.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'empty.db'}", migrate=False)
        config = alembic_config()
        with store.write() as conn:
            config.attributes["connection"] = conn
            command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
        store.dispose()
    generated = next((MIGRATIONS / "versions").glob("0001_*.py"))
    text = generated.read_text(encoding="utf-8")
    # No creation date: regenerating an unchanged schema gives an unchanged file.
    text = "\n".join(line for line in text.splitlines() if not line.startswith("Create Date:")) + "\n"
    INITIAL.write_text(text, encoding="utf-8")
    if generated != INITIAL:
        generated.unlink()
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
