"""The public URLs the system issues, in one place: what render writes and what the web app serves.

Per (campaign occurrence, language) each tracked link gets a signed *link token*, computed once; per
recipient one signed *recipient token* `r` (from the send ledger's row id) is substituted into every
personal URL. So personalising a message costs one HMAC, and every URL is still fully signed:

    /c/{link_token}/{r}     click: redirects only to the stored URL of that link
    /o/{r}.gif              open pixel
    /u/{r}                  unsubscribe (GET shows a page, POST is RFC 8058 one-click)
    /p/{r}                  preferences
    /v/{view_token}         view in browser / archive (no personal data)
    /confirm/{token}        double opt-in confirmation (timed)
    /subscribe/{list_slug}  public subscribe form
"""

from __future__ import annotations

from urllib.parse import quote

from newsletter.ids import parse_id
from newsletter.tokens import Signer

# The placeholder the renderer leaves in compiled HTML/text for the recipient token.
RECIPIENT = "%%r%%"


def recipient_token(signer: Signer, send_id: int) -> str:
    return signer.sign("recipient", send_id)


def read_recipient(signer: Signer, token: str) -> int | None:
    fields = signer.read("recipient", token)
    return parse_id(fields[0]) if fields and len(fields) == 1 else None


def link_token(signer: Signer, link_id: int) -> str:
    return signer.sign("link", link_id)


def read_link(signer: Signer, token: str) -> int | None:
    fields = signer.read("link", token)
    return parse_id(fields[0]) if fields and len(fields) == 1 else None


def click_url(base_url: str, signer: Signer, link_id: int, r: str = RECIPIENT) -> str:
    return f"{base_url}/c/{link_token(signer, link_id)}/{r}"


def open_url(base_url: str, r: str = RECIPIENT) -> str:
    return f"{base_url}/o/{r}.gif"


def unsubscribe_url(base_url: str, r: str = RECIPIENT) -> str:
    return f"{base_url}/u/{r}"


def preferences_url(base_url: str, r: str = RECIPIENT) -> str:
    return f"{base_url}/p/{r}"


def view_url(base_url: str, signer: Signer, occurrence_id: int, language: str) -> str:
    return f"{base_url}/v/{signer.sign('view', occurrence_id, language)}"


def archive_url(base_url: str, list_slug: str, language: str) -> str:
    """The public archive of a list in one language (no token: it shows nothing personal)."""
    return f"{base_url}/archive/{quote(list_slug)}/{quote(language)}"


def archive_feed_url(base_url: str, list_slug: str, language: str) -> str:
    return archive_url(base_url, list_slug, language) + ".xml"


def confirm_url(
    base_url: str, signer: Signer, subscriber_id: int, list_id: int, now: float | None = None
) -> str:
    return f"{base_url}/confirm/{signer.sign_timed('confirm', subscriber_id, list_id, now=now)}"
