"""Previews: a campaign (or a bare template) rendered per language into .html, .txt and .eml files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from newsletter.errors import RenderError
from newsletter.render import content
from newsletter.render.environment import template_names
from newsletter.render.message import Prepared, Recipient
from newsletter.render.prepare import prepare, sample_context
from newsletter.site import Site

# Where a sample reader of each language lives, so previews show times converted for someone.
SAMPLE_TIMEZONES = {
    "en": "America/New_York",
    "fr": "Europe/Paris",
    "es": "America/Mexico_City",
    "ru": "Europe/Moscow",
    "pt": "America/Sao_Paulo",
}


@dataclass
class PreviewFile:
    language: str
    template: str
    data: str  # "real" or "sample"
    paths: list[Path]


def sample_recipient(language: str) -> Recipient:
    return Recipient(
        send_id=0,
        email="preview@example.org",
        name="Maria Santos",
        language=language,
        timezone=SAMPLE_TIMEZONES.get(language.split("-")[0], "UTC"),
    )


def _campaign_context(site: Site, name: str, language: str, now: datetime) -> tuple[str, dict[str, Any], Any]:
    """(template, context, campaign) for `name`: a campaign of schedules.yaml with its real event and
    stored items when there are some, else sample data; or a bare template with sample data."""
    campaign = None
    if site.schedules_file.exists():
        from newsletter.schedule.config import load_schedules

        schedules = load_schedules(site)
        campaign = schedules.campaigns.get(name)
    context = sample_context(site, language, now)
    if campaign is None:
        if name not in template_names(site.templates_dir):
            known = ", ".join(template_names(site.templates_dir))
            raise RenderError(f"no campaign or template {name!r} (schedules.yaml); templates: {known}")
        return name, {**context, "data": "sample"}, None
    chain = site.fallback_chain(language)
    event = schedules.events.get(campaign.trigger.event or "")
    data = "sample"
    if event is not None:
        context["event"] = content.event_view(event, chain)
        if event.kind == "deadline":
            context["deadline"] = context["event"]
            context["sign_on_url"] = event.url
        data = "real"
    if campaign.template == "digest":
        with site.store.read() as conn:
            found = content.digest_items(
                conn, now - timedelta(days=7), chain, campaign.categories, campaign.trigger.max_items
            )
        if found:
            context["items"] = found
            data = "real"
    return campaign.template, {**context, "data": data}, campaign


def preview(
    site: Site, name: str, languages: list[str] | None, out_dir: Path, now: datetime
) -> list[PreviewFile]:
    """Write `<name>.<lang>.html|txt|eml` into `out_dir` for each language; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    _, _, campaign = _campaign_context(site, name, site.default_language, now)
    if languages is None:
        languages = list(campaign.languages) if campaign is not None else list(site.languages)
    for language in languages:
        template, context, campaign = _campaign_context(site, name, language, now)
        data = context.pop("data")
        prepared = prepare(
            site,
            template=template,
            language=language,
            context=context,
            campaign_id=name,
            now=now,
            subject=campaign.subject.get(language) if campaign is not None else None,
            preheader=campaign.preheader.get(language) if campaign is not None else None,
            postal_address=_postal_address(site),
            list_name=site.name,
            strict=True,
        )
        written.append(
            PreviewFile(language, template, data, _write(prepared, out_dir / f"{name}.{language}"))
        )
    return written


def _write(prepared: Prepared, stem: Path) -> list[Path]:
    recipient = sample_recipient(prepared.language)
    html, text, eml = (stem.parent / f"{stem.name}.{ext}" for ext in ("html", "txt", "eml"))
    html.write_text(prepared.personalise(prepared.html, recipient), encoding="utf-8")
    text.write_text(prepared.personalise(prepared.text, recipient, html=False), encoding="utf-8")
    eml.write_bytes(prepared.mime(recipient))
    return [html, text, eml]


def _postal_address(site: Site) -> str:
    from newsletter.audience.lists import load_lists

    found = load_lists(site).lists
    return found[0].postal_address if found else ""
