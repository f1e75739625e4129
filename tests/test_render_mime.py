"""The personalised MIME message: parse it back with the standard library and check every part."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from newsletter import urls
from newsletter.render.message import Recipient
from newsletter.render.prepare import prepare, sample_context
from newsletter.tokens import Signer

NOW = datetime(2021, 4, 14, 9, tzinfo=UTC)


@pytest.fixture
def prepared(render_site):
    return prepare(
        render_site,
        template="event_reminder",
        language="ru",
        context=sample_context(render_site, "ru", NOW),
        campaign_id="webinar-april-1d",
        now=NOW,
        sender=("Хаб СВУ 2021", "hub@hlm2021-hub.example.org"),
        postal_address="123 Example Street\nNew York",
        list_slug="members",
    )


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_message_parses_back_with_every_part(render_site, prepared):
    reader = Recipient(41, "zoya@example.org", "Зоя Иванова & Co", "ru", timezone="Asia/Almaty")
    data = prepared.mime(reader)
    msg = parse(data)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    assert msg["Subject"] == prepared.subject and msg["Subject"].startswith("Напоминание: Вебинар")
    assert msg["From"].addresses[0].display_name == "Хаб СВУ 2021"
    assert msg["To"].addresses[0].display_name == "Зоя Иванова & Co"
    assert msg["To"].addresses[0].addr_spec == "zoya@example.org"
    token = urls.recipient_token(Signer(render_site.settings["secret_key"]), 41)
    assert msg["List-Unsubscribe"] == f"<http://127.0.0.1:8000/u/{token}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"] == "<41.0.webinar-april-1d.ru@hlm2021-hub.example.org>"
    assert msg["List-Id"] == "<members.hlm2021-hub.example.org>"
    assert msg["Date"].datetime == NOW and msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = [part for part in msg.iter_parts()]
    assert plain.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    text_body = plain.get_content().replace("\r\n", "\n")
    html_body = html.get_content().replace("\r\n", "\n")
    assert text_body == prepared.personalise(prepared.text, reader, html=False)
    assert html_body == prepared.personalise(prepared.html, reader)
    assert "Здравствуйте, Зоя Иванова & Co!" in text_body
    assert "Здравствуйте, Зоя Иванова &amp; Co!" in html_body
    assert "15:00 (Алматы)" in text_body  # the reader's zone: 12:00 Moscow is 15:00 in Almaty
    assert f"/u/{token}" in html_body and "%%" not in html_body and "%%" not in text_body
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert max(len(line) for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")) <= 76
    assert urls.read_recipient(Signer(render_site.settings["secret_key"]), token) == 41


def test_only_personal_parts_differ_between_recipients(prepared):
    one = prepared.mime(Recipient(1, "a@example.org", "Ann", timezone="Europe/Moscow"))
    two = prepared.mime(Recipient(2, "b@example.org", "Bob", timezone="Europe/Moscow"))
    assert one != two
    assert parse(one)["Message-ID"] != parse(two)["Message-ID"]
    assert len(one) == len(two)  # same-length names and tokens: nothing else moved
    no_name = parse(prepared.mime(Recipient(3, "c@example.org")))
    assert no_name["To"] == "c@example.org"
    assert "Здравствуйте, друзья!" in no_name.get_body(("plain",)).get_content()


def test_date_can_be_given_at_send_time(prepared):
    later = datetime(2021, 4, 20, 7, 30, tzinfo=UTC)
    msg = parse(prepared.mime(Recipient(1, "a@example.org"), date=later))
    assert msg["Date"].datetime == later


def test_substitutions_and_personal_headers_for_api_transports(render_site, prepared):
    reader = Recipient(9, "d@example.org", "Dan <b>", timezone="UTC")
    values = prepared.substitutions(reader)
    token = urls.recipient_token(Signer(render_site.settings["secret_key"]), 9)
    assert values[urls.RECIPIENT] == token and values["%%name%%"] == "Dan &lt;b&gt;"
    assert set(values) >= {"%%r%%", "%%name%%", "%%t0%%"}
    assert all(key in prepared.html for key in values)  # every key is a placeholder of the HTML
    headers = prepared.personal_headers(reader)
    assert headers["List-Unsubscribe"] == f"<{prepared.unsubscribe_url(reader)}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Message-ID"].startswith("<9.")


def test_long_non_ascii_names_stay_within_line_limits(prepared):
    name = "Мария-Антуанетта Константиновна Преображенская-Кузнецова " * 3
    data = prepared.mime(Recipient(5, "m@example.org", name.strip(), timezone="Asia/Tokyo"))
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert name.strip() in parse(data).get_body(("plain",)).get_content()
