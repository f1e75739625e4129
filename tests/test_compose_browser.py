"""The composer in headless Chromium: write en and fr, preview both, schedule, find it in the plan,
send a test copy; organisers read only; a second concurrent save is refused; hostile Markdown never
reaches an email. Screenshots go to artifacts/admin/."""

from __future__ import annotations

import email
import re
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import select

from newsletter.schedule import stored
from newsletter.store import now_utc
from newsletter.store.tables import links, occurrences
from tests.support.report import PASSWORD, AdminSite, screenshot
from tests.support.track import LiveServer

SIGN_ON = "https://hlm2021-hub.example.org/declaration/sign-on"
EN_BODY = (
    "The **zero draft** of the Political Declaration is out.\n\n"
    f'[Endorse the declaration]({SIGN_ON} "declaration-sign-on"){{.button}}\n'
)
FR_BODY = (
    "L'**avant-projet** de la Déclaration politique est publié.\n\n"
    f'[Signer la déclaration]({SIGN_ON} "declaration-sign-on"){{.button}}\n'
)
HOSTILE = (
    "Hello <script>alert(1)</script> <img src=x onerror=alert(2)> "
    '<a href="javascript:alert(3)">raw</a>\n\n'
    "[click](javascript:alert(4)) [x](https://ok.example.org){onclick=alert(5)}\n\n"
    '<iframe src="https://evil.example.org"></iframe>'
)


@pytest.fixture
def page(browser: Any, admin_server: LiveServer) -> Any:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.base = admin_server.url  # type: ignore[attr-defined]
    yield tab
    context.close()
    # A form sent back with its errors answers 400 (bad fields) or 409 (a conflict): expected here.
    expected = re.compile(r"Failed to load resource: .* status of (400|409)")
    errors = [e for e in errors if not expected.search(e)]
    assert not errors, f"errors in the browser console: {errors}"


def login(page: Any, who: str, target: str) -> None:
    page.goto(page.base + target)
    page.fill("input[name=email]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}*")


def when() -> str:
    """A time comfortably ahead in Paris, as the datetime-local field takes it."""
    return (now_utc() + timedelta(days=20)).strftime("%Y-%m-%dT09:30")


def frame_text(page: Any, name: str, expect: str) -> str:
    """The HTML of preview frame `name` once it shows `expect`.

    Polled: a frame may still hold the previous preview or its placeholder for a moment after the
    click, and while a preview loads Chromium may swap the sandboxed frame for a new one (looking it
    up then finds none, or one being detached; both failed the test under load).
    """
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        element = page.query_selector(f"iframe[name={name}]")
        frame = element.content_frame() if element is not None else None
        try:
            seen = str(frame.content()) if frame is not None else ""
        except PlaywrightError:  # detached or navigating: look again
            seen = ""
        if expect in seen:
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"frame {name} never showed {expect!r}; last seen: {seen[:300]!r}")


def outbox_message(admin: AdminSite) -> Any:
    found = sorted(admin.site.outbox_dir.glob("*.eml"))
    assert found, "nothing in the outbox"
    return email.message_from_bytes(found[-1].read_bytes())


def html_part(message: Any) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return str(part.get_payload(decode=True).decode("utf-8"))


def compose(page: Any, ident: str, en_body: str = EN_BODY, fr_body: str = FR_BODY) -> None:
    page.goto(page.base + "/admin/compose/new")
    page.fill("input[name=id]", ident)
    page.check("input[name=lists][value=members]")
    page.fill("input[name=at]", when())
    page.fill("input[name=timezone]", "Europe/Paris")
    page.click("#tab-en")
    page.fill("input[name=subject_en]", "The zero draft is out")
    page.fill("textarea[name=body_en]", en_body)
    page.click("#tab-fr")
    page.fill("input[name=subject_fr]", "L'avant-projet est publié")
    page.fill("textarea[name=body_fr]", fr_body)


def test_staff_compose_preview_schedule_plan_and_test_copy(admin_site: AdminSite, page: Any) -> None:
    login(page, admin_site.staff, "/admin/compose/new")
    compose(page, "zero-draft-call")
    # The audience is counted per language as the lists change.
    page.wait_for_selector("#audience-counts .count[data-language=fr]")
    assert re.search(r"fr \d+", page.inner_text("#audience-counts"))
    page.click("button.preview-button[data-language=fr]")
    assert "Signer la déclaration" in frame_text(page, "phone-fr", "Signer la déclaration")
    assert "Signer la déclaration" in frame_text(page, "desktop-fr", "Signer la déclaration")
    page.click("#tab-en")
    page.click("button.preview-button[data-language=en]")
    assert "Endorse the declaration" in frame_text(page, "desktop-en", "Endorse the declaration")
    assert "zero draft" in frame_text(page, "phone-en", "zero draft")
    screenshot(page, "compose-en", full_page=False)

    page.click("#schedule")
    page.wait_for_url("**/admin/compose/zero-draft-call?saved=schedule")
    assert "Scheduled" in page.inner_text("#saved")
    assert "translated" in page.inner_text("#tab-fr") and "missing" in page.inner_text("#tab-es")

    # In the plan, with its local time and audience.
    page.goto(page.base + "/admin/schedule")
    item = page.locator("ol.timeline li", has_text="zero-draft-call")
    text = item.inner_text()
    assert "Europe/Paris" in text and "09:30" in text, text
    assert re.search(r"\d+ recipients", text), text

    # A test copy in French: the French body, with the tracked, labelled sign-on link.
    page.goto(page.base + "/admin/compose/zero-draft-call")
    page.select_option("select[name=test_lang]", "fr")
    page.click("#send-test")
    page.wait_for_url("**saved=test-fr")
    message = outbox_message(admin_site)
    body = html_part(message)
    assert message["Content-Language"] == "fr" and "Signer la déclaration" in body
    assert SIGN_ON not in body  # tracked: the link goes through /c/...
    with admin_site.site.store.read() as conn:
        occurrence = conn.scalar(select(occurrences.c.id).where(occurrences.c.campaign == "zero-draft-call"))
        rows = conn.execute(
            select(links.c.id, links.c.url, links.c.label).where(
                links.c.occurrence_id == occurrence, links.c.language == "fr"
            )
        ).all()
    sign_on = [r for r in rows if r.url.startswith(SIGN_ON)]
    assert sign_on and sign_on[0].label == "declaration-sign-on"
    assert re.search(r'href="[^"]*/c/[^"]+"[^>]*>\s*Signer la déclaration', body)


def test_an_organiser_reads_but_cannot_edit(
    admin_site: AdminSite, page: Any, admin_server: LiveServer
) -> None:
    login(page, admin_site.staff, "/admin/compose/new")
    compose(page, "read-me")
    page.click("#save-draft")
    page.wait_for_url("**/admin/compose/read-me?saved=draft")
    page.context.clear_cookies()
    login(page, admin_site.organiser, "/admin/compose/read-me")
    assert page.is_visible("#read-only") and not page.is_visible("#schedule")
    assert page.is_disabled("input[name=subject_en]")
    csrf = page.get_attribute("#composer input[name=csrf]", "value")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert "Only staff" in httpx.get(admin_server.url + "/admin/compose/new", cookies=cookies).text
    r = httpx.post(
        admin_server.url + "/admin/compose/save",
        data={"csrf": csrf, "id": "read-me", "revision": "1", "action": "schedule"},
        cookies=cookies,
    )
    assert r.status_code == 403
    assert [x.revision for x in stored.history(admin_site.site.store, "read-me")] == [1]


def test_a_second_concurrent_save_is_refused(admin_site: AdminSite, browser: Any, page: Any) -> None:
    login(page, admin_site.staff, "/admin/compose/new")
    compose(page, "two-editors")
    page.click("#save-draft")
    page.wait_for_url("**saved=draft")
    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    other.base = page.base  # type: ignore[attr-defined]
    login(other, admin_site.staff, "/admin/compose/two-editors")
    page.goto(page.base + "/admin/compose/two-editors")  # both opened revision 1
    page.click("#tab-en")
    page.fill("input[name=subject_en]", "First editor's subject")
    page.click("#save-draft")
    page.wait_for_url("**saved=draft")
    other.click("#tab-en")
    other.fill("input[name=subject_en]", "Second editor's subject")
    other.click("#save-draft")
    assert "after you opened revision 1" in other.inner_text("#form-error")
    assert "your changes were not saved" in other.inner_text("#form-error")
    other.context.close()
    latest = stored.latest(admin_site.site.store, "two-editors")
    assert latest is not None and latest.revision == 2
    assert latest.texts["en"]["subject"] == "First editor's subject"


def test_bad_fields_are_shown_on_the_form_and_nothing_is_saved(admin_site: AdminSite, page: Any) -> None:
    login(page, admin_site.staff, "/admin/compose/new")
    compose(page, "bad-one", en_body="   ")
    page.fill("input[name=at]", "2020-01-01T09:00")
    page.click("#tab-en")
    page.fill("input[name=subject_en]", "")
    page.click("#schedule")
    page.wait_for_selector("#error-at")
    assert "in the past" in page.inner_text("#error-at")
    assert "is empty" in page.inner_text("#error-subject_en")
    assert "renders to nothing" in page.inner_text("#error-body_en")
    assert stored.latest(admin_site.site.store, "bad-one") is None


def test_hostile_markdown_never_reaches_the_email(admin_site: AdminSite, page: Any) -> None:
    login(page, admin_site.staff, "/admin/compose/new")
    compose(page, "hostile", en_body=HOSTILE)
    page.click("#tab-en")
    page.click("button.preview-button[data-language=en]")
    shown = frame_text(page, "desktop-en", "Hello")
    page.click("#save-draft")
    page.wait_for_url("**saved=draft")
    page.select_option("select[name=test_lang]", "en")
    page.click("#send-test")
    page.wait_for_url("**saved=test-en")
    body = html_part(outbox_message(admin_site))
    for html in (shown, body):
        tags = re.findall(r"<[^>]+>", html)
        assert not [t for t in tags if re.search(r"javascript:|\son[a-z]+\s*=|<script|<iframe", t, re.I)]
        assert "&lt;script&gt;" in html  # raw HTML is shown as text
