"""The public archive pages: `/archive/<list>/<lang>` (localized HTML) and its Atom feed (`.xml`).

Nothing personal: each issue links to its anonymous copy (`/v/...`), and the pages carry no
recipient token. Subjects are rendered once per issue and language and remembered.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from babel.dates import format_date
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter import urls
from newsletter.errors import NewsletterError
from newsletter.report import archive
from newsletter.store import now_utc
from newsletter.web.i18n import translations

if TYPE_CHECKING:
    from newsletter.campaigns import Schedules
    from newsletter.web.context import PublicContext as Public

ATOM = "http://www.w3.org/2005/Atom"
CACHE = {"cache-control": "public, max-age=300"}


class Archive:
    """The archive routes of one site, with the subjects already rendered."""

    def __init__(self, pub: Public):
        self.pub = pub
        self._subjects: dict[tuple[int, str], str] = {}

    def _subject(self, schedules: Schedules, occurrence_id: int, language: str) -> str:
        key = (occurrence_id, language)
        if key not in self._subjects:
            from newsletter.render.assemble import prepare_occurrence

            try:
                site = self.pub.site
                subject = prepare_occurrence(site, schedules, occurrence_id, language, now_utc()).subject
            except NewsletterError:
                subject = ""  # the campaign or its event left schedules.yaml: listed by date only
            if len(self._subjects) > 10_000:
                self._subjects.clear()
            self._subjects[key] = subject
        return self._subjects[key]

    def _issues(self, slug: str, lang: str) -> tuple[str, list[archive.Issue]] | None:
        """The list's name and its issues in `lang`; None when there is no such list or language."""
        site = self.pub.site
        name = archive.list_name(site.store, slug, lang) if lang in site.languages else None
        if name is None:
            return None
        from newsletter.schedule.load import load_schedules

        schedules = load_schedules(site)

        def subject_of(occurrence_id: int, _campaign: str, language: str) -> str:
            return self._subject(schedules, occurrence_id, language)

        return name, archive.issues(site.store, schedules, slug, lang, subject_of)

    async def page(self, request: Request) -> Response:
        slug, lang = request.path_params["slug"], request.path_params["lang"]
        listed = await run_in_threadpool(self._issues, slug, lang)
        if listed is None:
            return self.pub.not_found(request)
        list_name, found = listed
        base = self.pub.site.settings["base_url"]
        signer = self.pub.signer
        _ = translations(lang).gettext
        entries = [
            {
                "url": urls.view_url(base, signer, issue.occurrence_id, lang),
                "subject": issue.subject or _("Newsletter of %(date)s") % {"date": self._date(issue, lang)},
                "date": self._date(issue, lang),
                "iso": issue.sent_at.date().isoformat(),
            }
            for issue in found
        ]
        response = self.pub.page(
            request,
            "archive.html",
            lang,
            slug=slug,
            list_name=list_name,
            issues=entries,
            feed_url=urls.archive_feed_url(base, slug, lang),
            others=[(code, name) for code, name in self.pub.language_names() if code != lang],
        )
        response.headers.update(CACHE)
        return response

    @staticmethod
    def _date(issue: archive.Issue, lang: str) -> str:
        return str(format_date(issue.sent_at, format="long", locale=lang.replace("-", "_")))

    async def feed(self, request: Request) -> Response:
        slug, lang = request.path_params["slug"], request.path_params["lang"]
        listed = await run_in_threadpool(self._issues, slug, lang)
        if listed is None:
            return self.pub.not_found(request)
        list_name, found = listed
        body = atom_feed(self.pub.site.settings["base_url"], self.pub, slug, lang, list_name, found)
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=CACHE)


def atom_feed(
    base: str, pub: Public, slug: str, lang: str, list_name: str, found: list[archive.Issue]
) -> bytes:
    """An Atom 1.0 (RFC 4287) document of the issues, newest first."""
    _ = translations(lang).gettext
    page_url = urls.archive_url(base, slug, lang)
    root = ET.Element("feed", {"xmlns": ATOM, "xml:lang": lang})
    ET.SubElement(root, "id").text = page_url
    ET.SubElement(root, "title").text = f"{list_name} · {pub.site.name}"
    ET.SubElement(root, "subtitle").text = _("Past issues of this newsletter")
    updated = max((i.sent_at for i in found), default=None) or now_utc().replace(microsecond=0)
    ET.SubElement(root, "updated").text = _rfc3339(updated)
    author = ET.SubElement(root, "author")
    ET.SubElement(author, "name").text = pub.site.name
    ET.SubElement(root, "link", {"rel": "self", "type": "application/atom+xml", "href": page_url + ".xml"})
    ET.SubElement(root, "link", {"rel": "alternate", "type": "text/html", "href": page_url})
    ET.SubElement(root, "generator").text = "newsletter"
    for issue in found:
        view = urls.view_url(base, pub.signer, issue.occurrence_id, lang)
        entry = ET.SubElement(root, "entry")
        ET.SubElement(entry, "id").text = view
        title = issue.subject or _("Newsletter of %(date)s") % {"date": Archive._date(issue, lang)}
        ET.SubElement(entry, "title").text = title
        ET.SubElement(entry, "updated").text = _rfc3339(issue.sent_at)
        ET.SubElement(entry, "published").text = _rfc3339(issue.sent_at)
        ET.SubElement(entry, "link", {"rel": "alternate", "type": "text/html", "href": view})
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _rfc3339(value: object) -> str:
    from datetime import UTC, datetime

    assert isinstance(value, datetime)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
