"""Dashboard security over real HTTP: login required, roles, CSRF, login rate limit, cookie flags."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from newsletter.report.rollup import SIGN_ON
from newsletter.store.tables import occurrences
from tests.support.report import PASSWORD, SENT_AT, AdminSite
from tests.support.track import LiveServer


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf": _csrf(page.text), "email": email, "password": password, "next": "/admin/"},
    )


def _scheduled(admin: AdminSite) -> int:
    with admin.site.store.read() as conn:
        return int(conn.scalar(select(occurrences.c.id).where(occurrences.c.status == "scheduled").limit(1)))


def _status(admin: AdminSite, occurrence_id: int) -> str:
    with admin.site.store.read() as conn:
        return str(conn.scalar(select(occurrences.c.status).where(occurrences.c.id == occurrence_id)))


@pytest.fixture
def client(admin_site: AdminSite, admin_server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=20) as c:
        yield c


def test_refused_without_login(admin_site: AdminSite, client: httpx.Client) -> None:
    occ = admin_site.seeded.occurrence_id
    for path in (
        "/admin/",
        f"/admin/campaigns/{occ}",
        f"/admin/campaigns/{occ}/clicks.csv",
        "/admin/compare",
        "/admin/schedule",
        "/admin/preview",
        "/admin/subscribers?email=person1@example.org",
    ):
        r = client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/admin/login?next=")
        assert "person1" not in r.text and "sign-on" not in r.text
    scheduled = _scheduled(admin_site)
    r = client.post(f"/admin/occurrences/{scheduled}/pause", data={"csrf": "x"})
    assert r.status_code == 401
    assert _status(admin_site, scheduled) == "scheduled"


def test_login_sets_a_safe_cookie_and_logout_clears_it(admin_site: AdminSite, client: httpx.Client) -> None:
    r = login(client, admin_site.staff)
    assert r.status_code == 303 and r.headers["location"] == "/admin/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http on loopback; see the https case below
    page = client.get("/admin/")
    assert page.status_code == 200 and admin_site.staff in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    r = client.post("/admin/logout", data={"csrf": _csrf(page.text)})
    assert "Max-Age=0" in r.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/admin/").status_code == 303


def test_cookie_is_secure_behind_https(admin_site: AdminSite, client: httpx.Client) -> None:
    r = client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" in r.headers["set-cookie"]


def test_wrong_password_and_open_redirect_refused(admin_site: AdminSite, client: httpx.Client) -> None:
    r = login(client, admin_site.staff, "not the password")
    assert r.status_code == 401 and "Wrong email or password" in r.text
    page = client.get("/admin/login")
    r = client.post(
        "/admin/login",
        data={
            "csrf": _csrf(page.text),
            "email": admin_site.staff,
            "password": PASSWORD,
            "next": "//evil.example/",
        },
    )
    assert r.headers["location"] == "/admin/"


def test_csrf_refusal(admin_site: AdminSite, client: httpx.Client) -> None:
    # A login form posted without the session's token (another site's form) is refused.
    r = client.post("/admin/login", data={"email": admin_site.staff, "password": PASSWORD})
    assert r.status_code == 403
    assert login(client, admin_site.staff).status_code == 303
    scheduled = _scheduled(admin_site)
    for token in (None, "", "forged-token"):
        data = {} if token is None else {"csrf": token}
        r = client.post(f"/admin/occurrences/{scheduled}/pause", data=data)
        assert r.status_code == 403, token
    assert _status(admin_site, scheduled) == "scheduled"
    # The same post with the page's own token goes through.
    token = _csrf(client.get("/admin/schedule").text)
    r = client.post(f"/admin/occurrences/{scheduled}/pause", data={"csrf": token})
    assert r.status_code == 303
    assert _status(admin_site, scheduled) == "paused"


def test_login_rate_limit(admin_site: AdminSite, client: httpx.Client) -> None:
    attempts = int(admin_site.site.settings["admin_login_attempts"])
    for _ in range(attempts):
        assert login(client, admin_site.staff, "guessing wrong").status_code == 401
    # Now even the right password waits: the limit holds per email and per address.
    r = login(client, admin_site.staff)
    assert r.status_code == 429 and "Too many failed logins" in r.text
    r = login(client, admin_site.organiser)  # same client IP
    assert r.status_code == 429


def test_organisers_read_but_do_not_act(admin_site: AdminSite, client: httpx.Client) -> None:
    assert login(client, admin_site.organiser).status_code == 303
    page = client.get("/admin/schedule")
    assert page.status_code == 200
    assert 'data-action="pause"' not in page.text and "test-send" not in page.text
    scheduled = _scheduled(admin_site)
    r = client.post(f"/admin/occurrences/{scheduled}/pause", data={"csrf": _csrf(page.text)})
    assert r.status_code == 403
    assert _status(admin_site, scheduled) == "scheduled"
    assert client.get(f"/admin/campaigns/{admin_site.seeded.occurrence_id}").status_code == 200


def _in_doubt_batch(admin: AdminSite) -> tuple[int, list[int]]:
    """Turn the last three sends of the seeded campaign into one SendGrid batch left in doubt."""
    from newsletter.store.tables import send_batches, sends

    occ = admin.seeded.occurrence_id
    with admin.site.store.write() as conn:
        conn.execute(occurrences.update().where(occurrences.c.id == occ).values(status="sending"))
        batch = conn.execute(
            send_batches.insert().values(
                occurrence_id=occ,
                language="fr",
                transport="sendgrid",
                status="in_doubt",
                error="timeout after the request was sent",
                created_at=SENT_AT,
                updated_at=SENT_AT,
            )
        ).inserted_primary_key[0]
        # A batch's rows are one (occurrence, language), as the ledger claims them.
        ids = [s["id"] for s in admin.seeded.sends if s["status"] == "sent" and s["language"] == "fr"][-3:]
        assert len(ids) == 3
        conn.execute(sends.update().where(sends.c.id.in_(ids)).values(status="in_doubt", batch_id=batch))
    return int(batch), ids


def test_in_doubt_batch_shown_and_decided_by_staff(admin_site: AdminSite, client: httpx.Client) -> None:
    from newsletter.store.tables import sends

    batch, ids = _in_doubt_batch(admin_site)
    assert login(client, admin_site.staff).status_code == 303
    page = client.get("/admin/")
    assert f"#{batch}" in page.text and "timeout after the request was sent" in page.text
    assert "Sending now" in page.text and "in doubt 3" in page.text  # the occurrence's progress
    r = client.post(f"/admin/batches/{batch}/decide", data={"csrf": _csrf(page.text), "decision": "sent"})
    assert r.status_code == 303
    with admin_site.site.store.read() as conn:
        statuses = set(conn.scalars(select(sends.c.status).where(sends.c.id.in_(ids))))
    assert statuses == {"sent"}
    assert f"#{batch}" not in client.get("/admin/").text
    bad = client.post(f"/admin/batches/{batch}/decide", data={"csrf": _csrf(page.text), "decision": "maybe"})
    assert bad.status_code == 400 and "sent, resend, failed" in bad.text


def test_forged_or_expired_session_cookie_is_a_stranger(admin_site: AdminSite, client: httpx.Client) -> None:
    import base64
    import json

    assert login(client, admin_site.staff).status_code == 303
    real = client.cookies["nl_admin"]
    body, mac = real.split(".")
    data = json.loads(base64.urlsafe_b64decode(body))
    # Another user id with the old signature, and an unsigned copy: both are no session at all.
    forged = base64.urlsafe_b64encode(json.dumps({**data, "u": data["u"] + 1}).encode()).decode()
    for value in (f"{forged}.{mac}", forged, ""):
        client.cookies.clear()
        client.cookies.set("nl_admin", value, domain="127.0.0.1", path="/admin")
        assert client.get("/admin/").status_code == 303, value
    # A genuine cookie older than admin_session_hours is refused too.
    from newsletter.web.admin.session import Codec, Session

    hours = int(admin_site.site.settings["admin_session_hours"])
    codec = Codec(admin_site.site.settings["secret_key"], max_age=hours * 3600)
    old = codec.dump(Session(user_id=data["u"], issued=int(data["t"]) - hours * 3600 - 60))
    client.cookies.clear()
    client.cookies.set("nl_admin", old, domain="127.0.0.1", path="/admin")
    assert client.get("/admin/").status_code == 303
    client.cookies.clear()
    client.cookies.set("nl_admin", real, domain="127.0.0.1", path="/admin")
    assert client.get("/admin/").status_code == 200


def test_campaign_over_all_its_occurrences(admin_site: AdminSite, client: httpx.Client) -> None:
    import csv
    import io

    from tests.support.report import seed_campaign

    later = seed_campaign(
        admin_site.site.store, people=30, seed=5, first_subscriber=5000, sent_at=SENT_AT + timedelta(days=2)
    )
    assert login(client, admin_site.organiser).status_code == 303
    page = client.get("/admin/campaign/sign-on-push")
    assert page.status_code == 200 and "2 occurrences, all together" in page.text
    rows = list(csv.DictReader(io.StringIO(client.get("/admin/campaign/sign-on-push/figures.csv").text)))
    total = next(r for r in rows if r["scope"] == "total")
    both = (admin_site.seeded, later)
    assert int(total["sent"]) == sum(s.sent() for s in both)
    assert int(total["sign_on"]) == sum(s.unique("click", human=True, label=SIGN_ON) for s in both)
    single = client.get(f"/admin/campaigns/{later.occurrence_id}")
    assert 'href="/admin/campaign/sign-on-push"' in single.text
    assert client.get("/admin/campaign/no-such-thing").status_code == 400
