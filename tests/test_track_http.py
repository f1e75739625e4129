"""Opens, click redirects and conversions over real HTTP: signed tokens, no open redirect, honest counts,
and the batched write path (hits counted = hits made after a graceful stop)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from newsletter import urls
from newsletter.site import Site
from newsletter.store.tables import events
from newsletter.tokens import Signer
from tests.support.track import seed_message

HUMAN = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120"}
SIGN_ON = "https://hub.example.org/sign-on?utm_source=newsletter&utm_campaign=declaration-call"


def _events(site: Site) -> list[Any]:
    with site.store.read() as conn:
        return conn.execute(select(events).order_by(events.c.id)).all()


@pytest.fixture
def message(site: Site) -> dict[str, Any]:
    seeded = seed_message(
        site.store, links=((SIGN_ON, "declaration-sign-on"), ("https://hub.example.org/webinar", "webinar"))
    )
    signer = Signer(site.settings["secret_key"])
    seeded["r"] = urls.recipient_token(signer, seeded["send_id"])
    seeded["click"] = [urls.link_token(signer, i) for i in seeded["link_ids"]]
    return seeded


def test_click_redirects_to_the_stored_url_and_is_counted(site: Site, live_server: Any, message: Any) -> None:
    server = live_server(site)
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        answer = client.get(f"/c/{message['click'][0]}/{message['r']}")
        assert answer.status_code == 302
        assert answer.headers["location"] == SIGN_ON
        pixel = client.get(f"/o/{message['r']}.gif")
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
        assert pixel.content.startswith(b"GIF89a")
    server.stop()
    rows = _events(site)
    assert [(r.kind, r.label, r.machine) for r in rows] == [
        ("click", "declaration-sign-on", False),
        ("open", None, False),
    ]
    click = rows[0]
    assert click.send_id == message["send_id"] and click.subscriber_id == message["subscriber_id"]
    assert click.occurrence_id == message["occurrence_id"]
    assert (click.campaign, click.language) == ("declaration-call", "fr")
    assert click.ip == "127.0.0.0/24" and "Chrome" in click.user_agent


def test_tampered_truncated_and_foreign_tokens_get_404_never_a_redirect(
    site: Site, live_server: Any, message: Any
) -> None:
    server = live_server(site)
    signer = Signer(site.settings["secret_key"])
    other = Signer("another-site-secret-key-000")
    good_link, r = message["click"][0], message["r"]
    body, mac = good_link.split(".")
    attempts = [
        f"/c/{good_link[:-3]}/{r}",  # truncated
        f"/c/{body}.{'A' * len(mac)}/{r}",  # forged MAC
        f"/c/{urls.link_token(signer, 999_999)}/{r}",  # signed but unknown link
        f"/c/{urls.link_token(other, message['link_ids'][0])}/{r}",  # another key
        f"/c/{r}/{r}",  # a recipient token is not a link token
        f"/c/{signer.sign('view', message['link_ids'][0])}/{r}",  # nor is any other purpose
        f"/c/{good_link}/{r[:-2]}",  # tampered recipient
        "/c/https:%2F%2Fevil.example/x",  # open-redirect attempts
        "/c/%2F%2Fevil.example/" + r,
        f"/c/{good_link}/{r}/..%2F..%2Fevil.example",
        f"/c/{good_link}?url=https://evil.example/{r}",
    ]
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        for path in attempts:
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "location" not in answer.headers
            assert "evil" not in answer.text
        ok = client.get(f"/c/{good_link}/{r}?next=https://evil.example")
        assert ok.headers["location"] == SIGN_ON  # query strings never steer the redirect
        # The open pixel answers with the image whatever the token.
        assert client.get("/o/garbage.gif").content.startswith(b"GIF89a")
    server.stop()
    assert [e.kind for e in _events(site)] == ["click"]


def test_machine_opens_and_bot_clicks_are_flagged(site: Site, live_server: Any, message: Any) -> None:
    server = live_server(site)
    r = message["r"]
    with httpx.Client(base_url=server.url) as client:
        client.get(f"/o/{r}.gif", headers={"user-agent": "Mozilla/5.0"})  # Apple MPP proxy
        client.head(f"/c/{message['click'][1]}/{r}", headers=HUMAN)  # HEAD: a scanner
        client.get(f"/c/{message['click'][1]}/{r}", headers={"user-agent": "Mimecast URL protect"})
    server.stop()
    assert [(e.kind, e.machine) for e in _events(site)] == [("open", True), ("click", True), ("click", True)]


def test_every_link_clicked_within_a_second_is_a_bot_burst(
    site: Site, live_server: Any, message: Any
) -> None:
    server = live_server(site)
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        for token in message["click"]:
            assert client.get(f"/c/{token}/{message['r']}").status_code == 302
    server.stop()
    assert [(e.kind, e.machine) for e in _events(site)] == [("click", True), ("click", True)]


def test_a_click_right_after_delivery_is_suspect(site: Site, live_server: Any) -> None:
    fresh = seed_message(site.store, email="bo@example.org", sent_seconds_ago=1)
    signer = Signer(site.settings["secret_key"])
    server = live_server(site)
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        r = urls.recipient_token(signer, fresh["send_id"])
        client.get(f"/c/{urls.link_token(signer, fresh['link_ids'][0])}/{r}")
    server.stop()
    assert [(e.kind, e.machine) for e in _events(site)] == [("click", True)]


@pytest.mark.parametrize("hit_writer", ["thread", "process"])
def test_graceful_stop_writes_every_hit(
    site_dir: Any, site_env: Any, live_server: Any, hit_writer: str
) -> None:
    # A long flush interval: the hits are all still in memory when the server is told to stop.
    site = Site.load(site_dir, environ={**site_env, "NEWSLETTER_HIT_FLUSH_INTERVAL": "60"})
    from newsletter.audience.lists import sync_lists

    sync_lists(site)
    seeded = seed_message(site.store)
    signer = Signer(site.settings["secret_key"])
    r = urls.recipient_token(signer, seeded["send_id"])
    click = f"/c/{urls.link_token(signer, seeded['link_ids'][0])}/{r}"
    server = live_server(site, hit_writer=hit_writer)
    made = 0
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        for n in range(120):
            answer = client.get(click if n % 2 else f"/o/{r}.gif")
            assert answer.status_code in (200, 302)
            made += 1
    assert _count(site) == 0  # nothing written yet: buffered
    server.stop()
    assert _count(site) == made
    site.close()


def _count(site: Site) -> int:
    with site.store.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def test_conversion_pixel_is_attributed_to_the_click(site_dir: Any, site_env: Any, live_server: Any) -> None:
    site = Site.load(site_dir, environ={**site_env, "NEWSLETTER_CONVERSION_PARAM": "nlc"})
    from newsletter.audience.lists import sync_lists

    sync_lists(site)
    seeded = seed_message(site.store, links=((SIGN_ON, "declaration-sign-on"),))
    signer = Signer(site.settings["secret_key"])
    r = urls.recipient_token(signer, seeded["send_id"])
    server = live_server(site)
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        target = httpx.URL(
            client.get(f"/c/{urls.link_token(signer, seeded['link_ids'][0])}/{r}").headers["location"]
        )
        assert target.params["utm_campaign"] == "declaration-call"
        token = target.params["nlc"]
        assert client.get(f"/s/{token}.gif").content.startswith(b"GIF89a")
        assert client.get(f"/s/{token[:-2]}xx.gif").status_code == 200  # forged: image, not counted
    server.stop()
    rows = _events(site)
    assert [(e.kind, e.link_id, e.send_id, e.label) for e in rows] == [
        ("click", seeded["link_ids"][0], seeded["send_id"], "declaration-sign-on"),
        ("conversion", seeded["link_ids"][0], seeded["send_id"], "declaration-sign-on"),
    ]
    site.close()


def test_individual_tracking_off_keeps_only_campaign_counts(
    site_dir: Any, site_env: Any, live_server: Any
) -> None:
    site = Site.load(
        site_dir,
        environ={**site_env, "NEWSLETTER_TRACK_INDIVIDUAL": "false", "NEWSLETTER_IP_PRIVACY": "none"},
    )
    from newsletter.audience.lists import sync_lists

    sync_lists(site)
    seeded = seed_message(site.store)
    signer = Signer(site.settings["secret_key"])
    server = live_server(site)
    with httpx.Client(base_url=server.url, headers=HUMAN) as client:
        client.get(f"/o/{urls.recipient_token(signer, seeded['send_id'])}.gif")
    server.stop()
    (row,) = _events(site)
    assert (row.send_id, row.subscriber_id, row.ip) == (None, None, "")
    assert (row.occurrence_id, row.campaign, row.language) == (
        seeded["occurrence_id"],
        "declaration-call",
        "fr",
    )
    site.close()
