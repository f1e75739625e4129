"""Render one (campaign, language): Jinja -> MJML -> HTML once, links found, text made, MIME prepared.

`prepare()` writes nothing: it returns the links it found (`Prepared.links`, ids None). The caller that
tracks registers them in the store and calls `track()` to get the message with signed click URLs and
the open pixel (see `assemble.py`).
"""

from __future__ import annotations

import html as htmllib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from markupsafe import Markup

from newsletter import urls
from newsletter.campaign_content import Content, Text
from newsletter.errors import RenderError
from newsletter.render import catalogs, content, formatting, samples
from newsletter.render.environment import language_environment, load_template, render_block, render_error
from newsletter.render.ics import calendar_links
from newsletter.render.links import LinkHelper, collect_links, retarget_links, rewrite_links
from newsletter.render.markdown import render_body
from newsletter.render.message import NAME, Prepared, time_placeholder
from newsletter.render.mjml import compile_mjml, lint_files, referenced_files
from newsletter.render.text import html_to_text
from newsletter.site import Site, pick_language
from newsletter.tokens import Signer

DEFAULTS: dict[str, Any] = {
    "deadline": None,
    "sign_on_url": "",
    "confirm_url": "",
    "content": "",
    "registered_event": "",
}


def resolve_language(site: Site, subscriber_language: str, campaign_languages: Sequence[str]) -> str:
    """The campaign language a subscriber reads: the first of their fallback chain the campaign has."""
    chain = site.fallback_chain(subscriber_language.strip().replace("_", "-"))
    return pick_language(chain, campaign_languages, site.default_language)


def check_language(site: Site, language: str) -> str:
    """`language` if the site offers it, else a RenderError listing what it offers."""
    formatting.locale(language)  # a code Babel does not know at all
    if language not in site.languages:
        raise RenderError(
            f"{site.config_file} [site] languages: unknown language {language!r}; "
            f"this site offers {', '.join(site.languages)} (add it there and create "
            f"{catalogs.po_path(site.templates_dir, language)})"
        )
    return language


def site_links(site: Site) -> dict[str, str]:
    table = site.site_table.get("links", {})
    found = {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}
    return {"hub": found.get("hub", site.settings["base_url"] + "/"), "declaration_sign_on": "", **found}


def prepare(
    site: Site,
    *,
    template: str,
    language: str,
    context: dict[str, Any],
    campaign_id: str,
    now: datetime,
    occurrence_id: int | None = None,
    subject: str | None = None,
    preheader: str | None = None,
    sender: tuple[str, str] | None = None,
    postal_address: str = "",
    utm: bool = True,
    strict: bool = False,
    list_name: str = "",
    list_slug: str = "",
    missing_translation: str = "fallback",
    content: Content | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    archive: bool = False,
) -> Prepared:
    """Render `template` in `language` once, ready for `Prepared.mime(recipient)`.

    UTM parameters are added when `utm`; links stay untracked (see `track()`). With
    `missing_translation="block"`, a string the language's catalog lacks raises a RenderError.
    A composed campaign's `content` gives the body (`{{ content }}`), subject and preheader of the
    language; with "block", a language whose text is missing or outdated raises a RenderError.
    """
    check_language(site, language)
    templates_dir = site.templates_dir
    base_url = site.settings["base_url"]
    signer = Signer(site.settings["secret_key"])
    chain = site.fallback_chain(language)

    language_env = language_environment(templates_dir, chain, strict=strict)
    env, translations = language_env.env, language_env.translations
    helper = LinkHelper(campaign_id, language, base_url, utm)
    times: list[tuple[datetime, str]] = []
    if content is not None:
        composed = composed_text(content, language, chain, missing_translation, campaign_id)
        body = render_body(composed.body)
        for url, label in body.links:
            helper(url, label)
        context = {**context, "content": body.mjml}
        subject = subject or composed.subject
        preheader = preheader or composed.preheader

    def local(style: str) -> Any:
        def placeholder(value: datetime) -> Markup:
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise RenderError(f"local_{style}() needs an aware datetime, got {value!r}")
            times.append((value, style))
            return Markup(time_placeholder(len(times) - 1))

        return placeholder

    sender_name, sender_email = sender or (site.name, f"newsletter@{_host(base_url)}")
    context = with_calendar_links(context, base_url, language)
    values: dict[str, Any] = {
        **DEFAULTS,
        "lang": language,
        "dir": formatting.direction(language),
        "start": "right" if formatting.direction(language) == "rtl" else "left",
        "site_name": site.name,
        "site_links": site_links(site),
        "list_name": list_name or site.name,
        "postal_address": postal_address,
        "recipient_name": Markup(NAME),
        "unsubscribe_url": urls.unsubscribe_url(base_url),
        "preferences_url": urls.preferences_url(base_url),
        "view_url": urls.view_url(base_url, signer, occurrence_id, language) if occurrence_id else "",
        "archive_url": urls.archive_url(base_url, list_slug, language) if archive and list_slug else "",
        "subject_text": subject or "",
        "preheader_text": preheader or "",
        **context,
        "link": helper,
        "local_datetime": local("datetime"),
        "local_time": local("time"),
        "format_date": lambda value: formatting.format_date(value, language),
        "format_number": lambda value: formatting.format_number(value, language),
    }
    with language_env.lock:
        language_env.missing.clear()
        tmpl = load_template(env, template, templates_dir)
        try:
            source = tmpl.render(values)
            subject_text = subject or htmllib.unescape(render_block(tmpl, "subject", values))
            preheader_text = preheader or htmllib.unescape(render_block(tmpl, "preheader", values))
            name_fallback = translations.gettext("friend")
        except RenderError:
            raise
        except Exception as exc:  # Jinja reports template errors as many exception types
            raise render_error(exc, template, templates_dir) from None
        missing = list(language_env.missing)
    if missing_translation == "block" and missing:
        strings = ", ".join(repr(m) for m in missing[:5])
        raise RenderError(
            f"campaign {campaign_id!r} blocks on missing translations: language {language!r} lacks "
            f"{len(missing)} string(s) in {catalogs.po_path(templates_dir, language)}: {strings}; "
            "translate them (newsletter i18n update) or set missing_translation: fallback"
        )

    files = referenced_files(env, template + ".mjml", templates_dir)
    if strict:
        problems = lint_files(files)
        if problems:
            raise RenderError(problems[0])
    html = compile_mjml(source, template, files)

    found = collect_links(html, helper)
    html = rewrite_links(html, helper, {})
    return Prepared(
        language=language,
        subject=subject_text,
        preheader=preheader_text,
        from_name=sender_name,
        from_email=sender_email,
        html=html,
        text=html_to_text(html),
        links=[(None, url, label) for url, label in found],
        campaign_id=campaign_id,
        occurrence_id=occurrence_id,
        base_url=base_url,
        signer=signer,
        now=now,
        times=times,
        name_fallback=name_fallback,
        default_timezone=_default_timezone(values),
        list_id=_list_id(list_slug),
        missing=missing,
        attachments=list(attachments),
    )


def track(prepared: Prepared, ids: dict[str, int]) -> Prepared:
    """The message with each found link (`ids`: URL -> its `links` row) as a signed click URL, and the
    open pixel; the text version is made again from the tracked HTML."""
    base_url = prepared.base_url
    targets = {url: urls.click_url(base_url, prepared.signer, ids[url]) for _, url, _ in prepared.links}
    html = retarget_links(prepared.html, targets)
    pixel = f'<img src="{urls.open_url(base_url)}" width="1" height="1" alt="" style="border:0">'
    html = html.replace("</body>", pixel + "</body>", 1)
    return replace(
        prepared,
        html=html,
        text=html_to_text(html),
        links=[(ids[url], url, label) for _, url, label in prepared.links],
    )


def composed_text(
    content: Content, language: str, chain: Sequence[str], missing_translation: str, campaign_id: str
) -> Text:
    """The text of `language` (or, with "fallback", of the next language of its chain that has one)."""
    status = content.status(language)
    if missing_translation == "block" and status in ("missing", "outdated"):
        source = content.texts.get(content.source)
        if status == "missing":
            why = f"there is no {language} text (content/{content.name}/{language}.md)"
        else:
            found = content.texts[language]
            why = (
                f"{found.where} was translated from another version of the {content.source} text "
                f"(source_hash {found.source_hash or 'none'}, now {source.hash if source else '?'})"
            )
        raise RenderError(
            f"campaign {campaign_id!r} blocks on missing translations: language {language!r} is {status}: "
            f"{why}; translate it (newsletter content stamp) or set missing_translation: fallback"
        )
    text = content.pick(chain)
    if text is None:
        raise RenderError(f"campaign {campaign_id!r}: content {content.name!r} has no text at all")
    return text


def _host(base_url: str) -> str:
    return base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"


def _list_id(slug: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in slug.lower()).strip("-")[:60]


def with_calendar_links(context: dict[str, Any], base_url: str, language: str) -> dict[str, Any]:
    """The event's "add to calendar" URLs (.ics, Google, Outlook), all on our own host."""
    event = context.get("event")
    if not isinstance(event, dict) or not event.get("event_id"):
        return context
    links = calendar_links(base_url, event["event_id"], event.get("session_id", ""), language)
    return {**context, "event": {**event, **links}}


def _default_timezone(values: dict[str, Any]) -> str:
    event = values.get("event")
    if isinstance(event, dict) and event.get("timezone"):
        return str(event["timezone"])
    return "UTC"


def sample_context(site: Site, language: str, now: datetime) -> dict[str, Any]:
    """Context for previews and checks: sample items, the April webinar, the sign-on deadline."""
    chain = site.fallback_chain(language)
    return {
        "items": [
            content.item_view(i, language, note=i["language"] != language) for i in samples.sample_items(now)
        ],
        "event": content.event_view(samples.sample_event(), chain),
        "deadline": content.event_view(samples.sample_deadline(), chain),
        "confirm_url": urls.confirm_url(
            site.settings["base_url"], Signer(site.settings["secret_key"]), 0, 0, now.timestamp()
        ),
    }
