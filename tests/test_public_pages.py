"""Public pages in headless Chromium (five languages) and over HTTP: subscribe, confirm, preferences,
unsubscribe; CSRF, honeypot, rate limit, RFC 8058 one-click."""

from __future__ import annotations

import re
from email.parser import BytesParser
from email.policy import default
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from newsletter import urls
from newsletter.audience.lists import sync_lists
from newsletter.audience.subscribers import email_hash
from newsletter.site import Site
from newsletter.store.tables import attempts, consents, lists, subscribers, subscriptions, suppressions
from newsletter.tokens import Signer
from newsletter.web.i18n import translations
from tests.support.track import seed_message

LIST = "drug-user-advocates"
LIST_NAMES = {
    "en": "Drug-user advocates",
    "fr": "Plaidoyer des personnes qui consomment des drogues",
    "es": "Activistas de personas que usan drogas",
    "ru": "Защитники прав людей, употребляющих наркотики",
    "pt": "Ativistas de pessoas que usam drogas",
}


def _status(site: Site, email: str, slug: str = LIST) -> str | None:
    with site.store.read() as conn:
        return conn.scalar(
            select(subscriptions.c.status)
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .join(lists, lists.c.id == subscriptions.c.list_id)
            .where(subscribers.c.email == email, lists.c.slug == slug)
        )


@pytest.mark.parametrize("lang", ["en", "fr", "es", "ru", "pt"])
def test_subscribe_confirm_preferences_unsubscribe_in_a_browser(
    site: Site, live_server: Any, browser: Any, lang: str
) -> None:
    _ = translations(lang).gettext
    server = live_server(site)
    signer = Signer(site.settings["secret_key"])
    email = f"person-{lang}@example.org"
    context = browser.new_context(locale=lang)  # Accept-Language picks the page language
    page = context.new_page()
    page.set_default_timeout(10_000)

    page.goto(f"{server.url}/subscribe/{LIST}")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("#title").inner_text() == _("Subscribe to %(list)s") % {"list": LIST_NAMES[lang]}
    page.fill("#email", email)
    page.fill("#name", "Test Person")
    page.click("#subscribe")
    assert page.locator("#title").inner_text() == _("Check your inbox")
    assert _status(site, email) == "unconfirmed"
    with site.store.read() as conn:
        person = conn.execute(select(subscribers).where(subscribers.c.email == email)).one()
        list_id = conn.scalar(select(lists.c.id).where(lists.c.slug == LIST))
        consent = conn.execute(select(consents).where(consents.c.subscriber_id == person.id)).one()
    assert person.language == lang
    assert (consent.action, consent.source, consent.ip) == ("subscribe", "form", "127.0.0.0/24")

    # The confirmation mail went through the normal transport (the outbox here): follow its link.
    link = _confirmation_link(site, email)
    assert link == urls.confirm_url(site.settings["base_url"], signer, person.id, list_id, now=_issued(link))
    page.goto(server.url + link[len(site.settings["base_url"]) :])
    assert _status(site, email) == "unconfirmed"  # opening the link alone (a scanner) confirms nothing
    page.click("#confirm")
    assert page.locator("#title").inner_text() == _("Subscription confirmed")
    assert _status(site, email) == "confirmed"

    sent = seed_message(site.store, email=email, language=lang)
    r = urls.recipient_token(signer, sent["send_id"])
    page.goto(f"{server.url}/p/{r}")
    assert page.locator("#title").inner_text() == _("Your preferences")
    page.fill("#timezone", "Europe/Paris")
    page.uncheck(f"#list-{LIST}")
    page.check("#list-members")  # a public list they never joined
    page.click("#save")
    assert page.locator("#message").inner_text() == _("Your preferences are saved.")
    assert _status(site, email) == "unsubscribed"
    with site.store.read() as conn:
        assert (
            conn.scalar(select(subscribers.c.timezone).where(subscribers.c.id == person.id)) == "Europe/Paris"
        )

    page.goto(f"{server.url}/u/{r}")
    assert page.locator("#title").inner_text() == _("Unsubscribe")
    assert _status(site, email, "members") == "confirmed"  # GET alone never unsubscribes
    page.click("#unsubscribe")
    assert page.locator("#title").inner_text() == _("You are unsubscribed")
    assert _status(site, email, "members") == "unsubscribed"
    with site.store.read() as conn:
        assert conn.scalar(
            select(suppressions.c.reason).where(suppressions.c.email_hash == email_hash(email))
        )
    context.close()


def _confirmation_link(site: Site, email: str) -> str:
    """The confirmation URL in the mail the outbox transport wrote for `email`."""
    for path in sorted(site.outbox_dir.glob("*.eml")):
        message = BytesParser(policy=default).parsebytes(path.read_bytes())
        if message["To"] and email in str(message["To"]):
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            found = re.search(r"https?://\S+/confirm/[A-Za-z0-9_.-]+", body.get_content())
            assert found, body.get_content()
            return found.group(0)
    raise AssertionError(f"no mail to {email} in {site.outbox_dir}")


def _issued(link: str) -> int:
    """The issue time inside a timed token (its last payload field), to rebuild the expected URL."""
    import base64

    body = link.rsplit("/", 1)[1].split(".")[0]
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    return int(payload.rsplit(":t", 1)[1])


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_one_click_post_unsubscribes_at_once_and_get_does_not(site: Site, live_server: Any) -> None:
    sent = seed_message(site.store)
    r = urls.recipient_token(Signer(site.settings["secret_key"]), sent["send_id"])
    server = live_server(site)
    with httpx.Client(base_url=server.url) as client:
        for _n in range(3):
            assert client.get(f"/u/{r}").status_code == 200
        assert _status(site, "ana@example.org", "members") == "confirmed"
        answer = client.post(f"/u/{r}", data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
    assert _status(site, "ana@example.org", "members") == "unsubscribed"
    with site.store.read() as conn:
        assert (
            conn.scalar(select(consents.c.source).where(consents.c.action == "unsubscribed")) == "one-click"
        )


def test_forms_without_a_valid_csrf_token_change_nothing(site: Site, live_server: Any) -> None:
    sent = seed_message(site.store)
    r = urls.recipient_token(Signer(site.settings["secret_key"]), sent["send_id"])
    server = live_server(site)
    with httpx.Client(base_url=server.url) as client:
        assert client.post(f"/u/{r}", data={"csrf": "forged"}).status_code == 403
        assert client.post(f"/p/{r}", data={"action": "leave"}).status_code == 403
        forged = {"email": "x@example.org", "csrf": "abc.def"}
        assert client.post(f"/subscribe/{LIST}", data=forged).status_code == 403
    # A token from another browser's cookie does not work either.
    with httpx.Client(base_url=server.url) as mine, httpx.Client(base_url=server.url) as theirs:
        token = _csrf(theirs, f"/p/{r}")
        _csrf(mine, f"/p/{r}")
        assert mine.post(f"/p/{r}", data={"action": "leave", "csrf": token}).status_code == 403
        assert theirs.post(f"/p/{r}", data={"action": "leave", "csrf": token}).status_code == 200
    assert _status(site, "ana@example.org", "members") == "unsubscribed"
    with site.store.read() as conn:
        assert conn.scalar(select(subscribers.c.id).where(subscribers.c.email == "x@example.org")) is None


def test_the_subscribe_limit_holds_across_instances(site_dir: Any, site_env: Any, live_server: Any) -> None:
    """Two app instances on one store (as behind a load balancer) share the per-IP limit, and the
    store keeps the client's IP only as a keyed hash."""
    env = {**site_env, "NEWSLETTER_SUBSCRIBE_RATE_LIMIT": "2"}
    first, second = Site.load(site_dir, environ=env), Site.load(site_dir, environ=env)
    sync_lists(first)
    servers = [live_server(first), live_server(second)]
    answers = []
    for n, server in enumerate([*servers, *servers]):
        with httpx.Client(base_url=server.url) as client:
            token = _csrf(client, f"/subscribe/{LIST}")
            answer = client.post(f"/subscribe/{LIST}", data={"email": f"q{n}@example.org", "csrf": token})
            answers.append(answer.status_code)
    assert answers == [200, 200, 429, 429]
    with first.store.read() as conn:
        keys = conn.scalars(select(attempts.c.key)).all()
    assert len(keys) == 2 and all(k.startswith("subscribe-ip:") and "127.0.0" not in k for k in keys)
    first.close()
    second.close()


def test_honeypot_rate_limit_and_private_lists(site_dir: Any, site_env: Any, live_server: Any) -> None:
    site = Site.load(site_dir, environ={**site_env, "NEWSLETTER_SUBSCRIBE_RATE_LIMIT": "2"})
    sync_lists(site)
    server = live_server(site)
    with httpx.Client(base_url=server.url) as client:
        token = _csrf(client, f"/subscribe/{LIST}")
        bot = client.post(
            f"/subscribe/{LIST}", data={"email": "bot@example.org", "website": "x", "csrf": token}
        )
        assert bot.status_code == 200  # same answer as a person gets
        for n in range(2):
            ok = client.post(f"/subscribe/{LIST}", data={"email": f"p{n}@example.org", "csrf": token})
            assert ok.status_code == 200
        limited = client.post(f"/subscribe/{LIST}", data={"email": "p9@example.org", "csrf": token})
        assert limited.status_code == 429
        bad = client.post(f"/subscribe/{LIST}?lang=fr", data={"email": "nope", "csrf": token})
        assert bad.status_code in (400, 429)
        assert client.get("/subscribe/key-populations").status_code == 404  # not public
        assert client.get("/subscribe/no-such-list").status_code == 404
        assert client.get("/confirm/garbage").status_code == 404
        assert client.get("/u/garbage").status_code == 404
        assert client.get("/p/garbage").status_code == 404
    assert _status(site, "bot@example.org") is None
    assert _status(site, "p1@example.org") == "unconfirmed" and _status(site, "p9@example.org") is None
    site.close()


def test_expired_and_tampered_confirmation_links_are_refused(site: Site, live_server: Any) -> None:
    import time

    signer = Signer(site.settings["secret_key"])
    server = live_server(site)
    with site.store.read() as conn:
        list_id = conn.scalar(select(lists.c.id).where(lists.c.slug == LIST))
    old = urls.confirm_url(server.url, signer, 1, list_id, now=time.time() - 8 * 86400)
    fresh = urls.confirm_url(server.url, signer, 1, list_id)
    assert httpx.get(old).status_code == 404
    assert httpx.get(fresh[:-3] + "AAA").status_code == 404
