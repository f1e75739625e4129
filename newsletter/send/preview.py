"""A campaign rendered without an occurrence: what `--dry-run` shows and `--test EMAIL` sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsletter.audience.select import count_audience
from newsletter.errors import InputError


@dataclass(frozen=True)
class LanguagePlan:
    language: str
    recipients: int
    subject: str
    html_bytes: int
    error: str = ""  # why this language does not render


def prepare_campaign(
    site: Any, campaign_id: str, language: str, now: datetime, event_id: str | None = None
) -> Any:
    """The campaign's message in `language` as it would go now (links untracked: no occurrence)."""
    from newsletter.render import prepare
    from newsletter.render.content import occurrence_context
    from newsletter.render.prepare import list_fields
    from newsletter.schedule.config import load_schedules

    schedules = load_schedules(site)
    campaign = schedules.campaigns.get(campaign_id)
    if campaign is None:
        raise InputError(
            f"no campaign {campaign_id!r} in schedules.yaml; campaigns: {', '.join(schedules.campaigns)}"
        )
    event_id = event_id or campaign.trigger.event
    event = schedules.events.get(event_id) if event_id else None
    if event_id and event is None:
        raise InputError(f"--event {event_id}: no such event; events: {', '.join(schedules.events)}")
    with site.store.read() as conn:
        context = occurrence_context(
            conn,
            campaign=campaign,
            event=event,
            session_id=None,
            chain=site.fallback_chain(language),
            due_at=now,
        )
        from_list = list_fields(conn, campaign, language)
    return prepare(
        site,
        template=campaign.template,
        language=language,
        context=context,
        campaign_id=campaign.id,
        now=now,
        subject=campaign.subject.get(language),
        preheader=campaign.preheader.get(language),
        track=False,
        utm=campaign.utm,
        missing_translation=campaign.missing_translation,
        **from_list,
    )


def dry_run(site: Any, campaign_id: str, now: datetime, event_id: str | None = None) -> list[LanguagePlan]:
    """Per language the campaign would go in: recipients (after fallback) and the rendered message."""
    from newsletter.render import resolve_language
    from newsletter.send.engine import campaign_of

    campaign = campaign_of(site, campaign_id)
    per_language: dict[str, int] = {}
    for language, n in count_audience(site.store, campaign.audience).items():
        resolved = resolve_language(site, language, campaign.languages)
        per_language[resolved] = per_language.get(resolved, 0) + n
    plans = []
    for language in sorted(per_language):
        prepared = prepare_campaign(site, campaign_id, language, now, event_id)
        plans.append(
            LanguagePlan(language, per_language[language], prepared.subject, len(prepared.html.encode()))
        )
    return plans
