"""Sample data for previews and checks: hub items and a webinar shaped like the real 2021 ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.campaigns import Event, Session

HUB = "https://hlm2021-hub.example.org"

_ITEMS = [
    (
        "Civil society declaration for the 2021 High-Level Meeting: the final text",
        "news/declaration-final-text",
        "<p>After three rounds of consultation with <strong>more than 400 organisations</strong>, the "
        "final text of the declaration is ready. It calls on Member States to end the inequalities that "
        "drive the epidemic and to put communities at the centre of the response.</p>",
        ["declaration", "advocacy"],
    ),
    (
        "Zero draft of the Political Declaration: our first analysis",
        "analysis/zero-draft",
        "<p>The zero draft keeps the 2025 targets but weakens the language on key populations. Read our "
        "line-by-line analysis and the amendments we propose to the co-facilitators.</p>",
        ["negotiations"],
    ),
    (
        "Webinar recording: what to expect from the HLM",
        "webinars/what-to-expect",
        "<p>The recording of the April webinar is online in English, French, Spanish, Russian and "
        "Portuguese, with the slides and the questions asked by participants.</p>",
        ["webinar"],
    ),
    (
        "Community-led monitoring: a guide for national advocates",
        "resources/clm-guide",
        "<p>How community-led monitoring data can support your government's position in the "
        "negotiations, with examples from <em>South Africa, Ukraine and Brazil</em>.</p>",
        ["resources"],
    ),
    (
        "Key populations statement signed by 120 networks",
        "news/key-populations-statement",
        "<p>Networks of sex workers, people who use drugs, gay men and other men who have sex with men "
        "and transgender people have joined their voices ahead of the negotiations.</p>",
        ["key populations"],
    ),
    (
        "Accreditation to the HLM: deadlines and how to apply",
        "practical/accreditation",
        "<p>Organisations not in consultative status with ECOSOC can still apply for accreditation. "
        "The form closes on 30 April; the hub can help you fill it in.</p>",
        ["practical"],
    ),
    (
        "Regional consultation for Eastern Europe and Central Asia",
        "regions/eeca-consultation",
        "<p>The regional consultation took place online with 85 participants from 14 countries. The "
        "report lists the region's priorities: harm reduction, decriminalisation and funding.</p>",
        ["regions"],
    ),
    (
        "Funding the response: the resource needs for 2025",
        "analysis/resource-needs",
        "<p>New estimates put the resources needed for the response in low- and middle-income countries "
        "at US$ 29 billion a year by 2025. What that means for the declaration.</p>",
        ["funding"],
    ),
    (
        "Youth caucus: join the preparatory calls",
        "news/youth-caucus",
        "<p>Young people living with HIV meet every second Thursday to prepare their interventions. "
        "All youth-led organisations are welcome.</p>",
        ["youth"],
    ),
    (
        "Media kit for the HLM week",
        "resources/media-kit",
        "<p>Key messages, figures and photos you may use freely in your communication during the "
        "High-Level Meeting week, 8 to 10 June 2021.</p>",
        ["resources", "media"],
    ),
]


def sample_items(now: datetime) -> list[dict[str, Any]]:
    """Ten hub items (in English, as most of the hub's news first appears)."""
    return [
        {
            "title": title,
            "link": f"{HUB}/{path}",
            "summary_html": summary,
            "published_at": now - timedelta(hours=10 * i + 3),
            "language": "en",
            "categories": categories,
        }
        for i, (title, path, summary, categories) in enumerate(_ITEMS)
    ]


def _session(lang: str, day: int, hour: int, tz: str, title: str) -> Session:
    return Session(
        id=f"webinar-april-{lang}",
        language=lang,
        start=datetime(2021, 4, day, hour, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC),
        end=datetime(2021, 4, day, hour + 1, 30, tzinfo=ZoneInfo(tz)).astimezone(UTC),
        timezone=tz,
        join_url=f"https://zoom.example.org/j/2021042{day}{hour}",
        registration_url=f"{HUB}/webinars/april/register?lang={lang}",
        title={lang: title},
    )


def sample_event() -> Event:
    """The April 2021 webinar: 10:00 New York for English, one session a language."""
    title = {
        "en": "Webinar: the 2021 High-Level Meeting on HIV/AIDS and what is at stake",
        "fr": "Webinaire : la Réunion de haut niveau 2021 sur le VIH/sida et ses enjeux",
        "es": "Seminario web: la Reunión de Alto Nivel 2021 sobre el VIH/sida y lo que está en juego",
        "ru": "Вебинар: Совещание высокого уровня по ВИЧ/СПИДу 2021 года и что на кону",
        "pt": "Webinar: a Reunião de Alto Nível de 2021 sobre HIV/aids e o que está em jogo",
    }
    sessions = (
        _session("en", 21, 10, "America/New_York", title["en"]),
        _session("fr", 21, 14, "Europe/Paris", title["fr"]),
        _session("es", 21, 11, "America/Mexico_City", title["es"]),
        _session("ru", 22, 12, "Europe/Moscow", title["ru"]),
        _session("pt", 22, 10, "America/Sao_Paulo", title["pt"]),
    )
    return Event(
        id="webinar-april-2021",
        kind="webinar",
        title=title,
        start=sessions[0].start,
        end=sessions[0].end,
        timezone="America/New_York",
        url=f"{HUB}/webinars/april",
        sessions=sessions,
    )


def sample_deadline() -> Event:
    """The sign-on deadline of the declaration."""
    return Event(
        id="declaration-deadline",
        kind="deadline",
        title={"en": "Declaration sign-on deadline", "fr": "Date limite de signature de la déclaration"},
        start=datetime(2021, 5, 31, 23, 59, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC),
        timezone="America/New_York",
        url=f"{HUB}/declaration/sign-on",
    )


# What a bare `message` template shows in previews: a composed campaign's body stands here.
SAMPLE_BODY = """The text of a composed campaign goes here, written in Markdown per language
(`content/<campaign>/<lang>.md`, or the dashboard's composer).

[Endorse the declaration](https://hlm2021-hub.example.org/declaration/sign-on "declaration-sign-on"){.button}
"""
