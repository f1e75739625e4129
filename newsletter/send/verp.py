"""VERP: the envelope sender of each message names its send, so a bounce says whose message it was.

With `bounce_address = bounces@hub.example.org`, the message of send 123 goes out with the envelope
sender (Return-Path) `bounces+<token>@hub.example.org`, where the token is signed ("bounce" purpose):
a bounce addressed to it can only name a send this site made. Mail servers keep the part after `+`
(Postfix `recipient_delimiter = +`, Exim's `local_part_suffix`), so all of it reaches one mailbox.
The token is case-sensitive; no common MTA changes the case of a local part.
"""

from __future__ import annotations

from newsletter.tokens import Signer

DELIMITER = "+"


def envelope_sender(signer: Signer, bounce_address: str, send_id: int | None) -> str:
    """`local+token@domain` for a send; the plain bounce address when there is no send id."""
    local, at, domain = bounce_address.rpartition("@")
    if not at or not local or not send_id:
        return bounce_address
    return f"{local}{DELIMITER}{signer.sign('bounce', int(send_id))}@{domain}"


def send_of(signer: Signer, address: str, bounce_address: str = "") -> int | None:
    """The send id a VERP address names, or None (not ours, tampered, or another local part)."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at:
        return None
    base, plus, token = local.partition(DELIMITER)
    if not plus or not token:
        return None
    if bounce_address:
        want_local, _, want_domain = bounce_address.rpartition("@")
        if base.lower() != want_local.lower() or domain.lower() != want_domain.lower():
            return None
    fields = signer.read("bounce", token)
    if not fields or len(fields) != 1 or not fields[0].isdigit():
        return None
    return int(fields[0])
