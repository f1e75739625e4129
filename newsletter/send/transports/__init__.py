"""Transports: SendGrid, SMTP and the outbox folder, behind one `Transport` protocol (base.py)."""

from newsletter.send.transports.base import (
    BatchRejected,
    BatchResult,
    InDoubtError,
    Mode,
    TransientError,
    Transport,
)

__all__ = ["BatchRejected", "BatchResult", "InDoubtError", "Mode", "TransientError", "Transport"]
