"""The outbox: each message as an .eml file in a folder, for a laptop with nothing configured.

A file is named by its send ledger id and written atomically (a temporary file renamed into place,
the batch flushed to disk before the ledger says "sent"), so a message is either there whole or not at
all, and handing the same send id over again (a batch retried after a crash) finds the file and writes
nothing: the outbox is idempotent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.send.transports.base import BatchResult, Mode
from newsletter.send.verp import envelope_sender


def eml_name(send_id: int) -> str:
    return f"send-{send_id:010d}.eml"


class OutboxTransport:
    """Writes `<outbox_dir>/send-<id>.eml` per recipient."""

    name = "outbox"
    mode: Mode = "idempotent"
    batch_size = 250  # what a crash makes it redo (cheaply: files already there are skipped)

    def __init__(self, folder: Path | str, *, fsync: bool = True, bounce_address: str = ""):
        self.folder = Path(folder)
        self.bounce_address = bounce_address
        self.fsync = fsync
        self.folder.mkdir(parents=True, exist_ok=True)

    def send_batch(self, prepared: Any, recipients: Sequence[Any]) -> BatchResult:
        result = BatchResult()
        date = datetime.now(UTC)  # the Date header: when it is handed over, not when it was rendered
        for r in recipients:
            path = self.folder / (eml_name(r.send_id) if r.send_id else f"single-{os.urandom(6).hex()}.eml")
            if not path.exists():
                data = prepared.mime(r, date)
                if self.bounce_address:
                    sender = envelope_sender(prepared.signer, self.bounce_address, r.send_id)
                    data = f"Return-Path: <{sender}>\r\n".encode() + data
                self._write(path, data)
            result.message_ids[r.send_id] = path.name
        if self.fsync and recipients:
            # One flush of the whole batch (files and renames) before the ledger says "sent": a
            # process crash never needs it, a power cut does, and per-file fsync costs ~6 ms each.
            os.sync()
        return result

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def close(self) -> None:
        pass
