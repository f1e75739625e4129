"""Download my data: the person's own rows, exactly, from the preferences page and for staff; both stores."""

from __future__ import annotations

import httpx
from sqlalchemy import or_, select

from newsletter import urls
from newsletter.store.tables import audit_log, consents, events, sends, subscribers, subscriptions
from newsletter.tokens import Signer
from tests.support.report import AdminSite
from tests.support.track import LiveServer
from tests.test_admin_http import _csrf, login


def _expected(store, email: str) -> dict[str, set[int]]:
    with store.read() as conn:
        sid = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
        send_ids = set(conn.scalars(select(sends.c.id).where(sends.c.subscriber_id == sid)))
        return {
            "id": {sid},
            "sends": send_ids,
            "events": set(
                conn.scalars(
                    select(events.c.id).where(
                        or_(events.c.subscriber_id == sid, events.c.send_id.in_(send_ids))
                    )
                )
            ),
            "consents": set(conn.scalars(select(consents.c.id).where(consents.c.subscriber_id == sid))),
            "subscriptions": set(
                conn.scalars(select(subscriptions.c.list_id).where(subscriptions.c.subscriber_id == sid))
            ),
        }


def test_person_downloads_exactly_their_rows_and_staff_the_same(
    admin_site: AdminSite, admin_server: LiveServer
) -> None:
    site = admin_site.site
    email = "person7@example.org"
    expected = _expected(site.store, email)
    assert expected["sends"] and expected["events"] and expected["subscriptions"]
    mine = [s for s in admin_site.seeded.sends if s["email"] == email][0]
    r = urls.recipient_token(Signer(site.settings["secret_key"]), mine["id"])
    with httpx.Client(base_url=admin_server.url, follow_redirects=False, timeout=30) as client:
        page = client.get(f"/p/{r}")
        assert page.status_code == 200 and f'href="/p/{r}/data.json"' in page.text
        got = client.get(f"/p/{r}/data.json")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/json")
        assert "attachment" in got.headers["content-disposition"]
        assert got.headers["cache-control"].startswith("no-store")
        data = got.json()
        assert client.get(f"/p/{r}x/data.json").status_code == 404
        # Staff get the same document from the person's page (organisers do not).
        assert login(client, admin_site.staff).status_code == 303
        person_page = client.get("/admin/subscribers", params={"email": email})
        assert "/admin/subscribers/data.json?email=person7%40example.org" in person_page.text
        staff = client.get("/admin/subscribers/data.json", params={"email": email})
        assert staff.status_code == 200
        assert (
            client.get("/admin/subscribers/data.json", params={"email": "nobody@example.org"}).status_code
            == 404
        )
        client.post("/admin/logout", data={"csrf": _csrf(person_page.text)})
        assert login(client, admin_site.organiser).status_code == 303
        assert client.get("/admin/subscribers/data.json", params={"email": email}).status_code == 403
    assert {data["profile"]["id"]} == expected["id"] and data["profile"]["email"] == email
    assert {s["id"] for s in data["sends"]} == expected["sends"]
    assert {e["id"] for e in data["events"]} == expected["events"]
    assert {c["id"] for c in data["consents"]} == expected["consents"]
    assert {s["list_id"] for s in data["subscriptions"]} == expected["subscriptions"]
    assert all(e["link_url"] for e in data["events"] if e["kind"] == "click")
    assert {k: v for k, v in staff.json().items() if k != "exported_at"} == {
        k: v for k, v in data.items() if k != "exported_at"
    }
    with site.store.read() as conn:
        (entry,) = conn.execute(select(audit_log).where(audit_log.c.action == "data-export")).all()
    assert (entry.actor, entry.target) == (admin_site.staff, email)
