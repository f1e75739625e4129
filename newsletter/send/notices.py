"""Mails about a subscription itself: the double opt-in confirmation and the welcome, sent at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from newsletter.audience.signup import Outcome
from newsletter.render.message import Recipient
from newsletter.render.prepare import prepare
from newsletter.send.engine import send_single
from newsletter.site import Site
from newsletter.store.tables import lists, subscribers
from newsletter.tokens import Signer
from newsletter.urls import confirm_url


def send_signup_mail(site: Site, outcome: Outcome, *, now: float) -> bool:
    """Send the confirmation or welcome mail through the normal transports; False if it could not go."""
    if not outcome.mail:
        return False
    with site.store.read() as conn:
        person = conn.execute(select(subscribers).where(subscribers.c.id == outcome.subscriber_id)).first()
        mlist = conn.execute(select(lists).where(lists.c.id == outcome.list_id)).first()
    if person is None or mlist is None:
        return False
    signer = Signer(site.settings["secret_key"])
    link = confirm_url(site.settings["base_url"], signer, outcome.subscriber_id, outcome.list_id, now=now)
    list_name = (mlist.name or {}).get(person.language) or mlist.slug
    prepared = prepare(
        site,
        template=outcome.mail,
        language=person.language,
        context={"confirm_url": link, "list_name": list_name, "name": person.name},
        campaign_id=outcome.mail,
        now=datetime.fromtimestamp(now, UTC),
        sender=(mlist.sender_name, mlist.sender_email),
        postal_address=mlist.postal_address,
        list_name=list_name,
        list_slug=mlist.slug,
    )
    recipient = Recipient(
        send_id=0,
        email=person.email,
        name=person.name,
        language=person.language,
        subscriber_id=person.id,
        timezone=person.timezone,
    )
    send_single(site, prepared, recipient)
    return True
