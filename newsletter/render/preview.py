"""Previews: a campaign (or a bare template) rendered per language into .html, .txt and .eml files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.campaigns import Schedules
from newsletter.errors import RenderError
from newsletter.render.assemble import prepare_campaign
from newsletter.render.environment import template_names
from newsletter.render.message import Prepared, Recipient
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
    translation: str = ""  # a composed campaign's text: source, translated, outdated or missing


def sample_recipient(language: str) -> Recipient:
    return Recipient(
        send_id=0,
        email="preview@example.org",
        name="Maria Santos",
        language=language,
        timezone=SAMPLE_TIMEZONES.get(language.split("-")[0], "UTC"),
    )


def preview(
    site: Site,
    schedules: Schedules,
    name: str,
    languages: list[str] | None,
    out_dir: Path,
    now: datetime,
) -> list[PreviewFile]:
    """Write `<name>.<lang>.html|txt|eml` into `out_dir` for each language; returns what was written.

    `name` is a campaign (its real event and stored items where there are some, else sample data) or
    a bare template (sample data).
    """
    campaign = schedules.campaigns.get(name)
    if campaign is None and name not in template_names(site.templates_dir):
        known = ", ".join(template_names(site.templates_dir))
        raise RenderError(f"no campaign or template {name!r} ({schedules.source}); templates: {known}")
    if languages is None:
        languages = list(campaign.languages) if campaign is not None else list(site.languages)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for language in languages:
        # A preview shows an outdated or missing text as its readers would get it by fallback, and says so.
        prepared, found = prepare_campaign(
            site, schedules, name, language, now, samples=True, strict=True, missing_translation="fallback"
        )
        paths = _write(prepared, out_dir / f"{name}.{language}")
        status = campaign.content.status(language) if campaign is not None and campaign.content else ""
        written.append(PreviewFile(language, found.template, found.data, paths, status))
    return written


def _write(prepared: Prepared, stem: Path) -> list[Path]:
    recipient = sample_recipient(prepared.language)
    html, text, eml = (stem.parent / f"{stem.name}.{ext}" for ext in ("html", "txt", "eml"))
    html.write_text(prepared.personalise(prepared.html, recipient), encoding="utf-8")
    text.write_text(prepared.personalise(prepared.text, recipient, html=False), encoding="utf-8")
    eml.write_bytes(prepared.mime(recipient))
    return [html, text, eml]
