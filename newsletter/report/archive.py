"""The public archive: past issues of campaigns marked `archive: true`, per list and language.

Only sent occurrences are listed, newest first; each links to its anonymous copy at `/v/...` (no name,
times in UTC, clicks counted for no one). Subjects come from `schedules.yaml` or the rendered template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from newsletter.campaigns import Schedules
from newsletter.store import Store
from newsletter.store.tables import lists, occurrences

LIMIT = 100


@dataclass(frozen=True)
class Issue:
    occurrence_id: int
    campaign: str
    sent_at: datetime
    language: str
    subject: str


def list_name(store: Store, slug: str, language: str) -> str | None:
    """The active list's name in `language` (else its default language's, else the slug); None: no list."""
    with store.read() as conn:
        row = conn.execute(
            select(lists.c.name, lists.c.default_language).where(
                lists.c.slug == slug, lists.c.active.is_(True)
            )
        ).first()
    if row is None:
        return None
    names = row.name or {}
    return str(names.get(language) or names.get(row.default_language) or slug)


def archived_campaigns(schedules: Schedules, list_slug: str) -> list[str]:
    """Ids of the campaigns marked `archive: true` that go to `list_slug`."""
    return sorted(c.id for c in schedules.campaigns.values() if c.archive and list_slug in c.audience.lists)


def issues(
    store: Store,
    schedules: Schedules,
    list_slug: str,
    language: str,
    subject_of: Callable[[int, str, str], str],
    limit: int = LIMIT,
) -> list[Issue]:
    """The sent issues of the list's archived campaigns in `language`, newest first.

    `subject_of(occurrence_id, campaign, language)` gives a subject the schedule does not state.
    """
    campaigns = archived_campaigns(schedules, list_slug)
    if not campaigns:
        return []
    with store.read() as conn:
        rows = conn.execute(
            select(occurrences.c.id, occurrences.c.campaign, occurrences.c.due_at, occurrences.c.languages)
            .where(occurrences.c.campaign.in_(campaigns), occurrences.c.status == "sent")
            .order_by(occurrences.c.due_at.desc(), occurrences.c.id.desc())
        ).all()
    found: list[Issue] = []
    for row in rows:
        if language not in (row.languages or []):
            continue
        stated = schedules.campaigns[row.campaign].subject.get(language)
        subject = stated or subject_of(int(row.id), row.campaign, language)
        found.append(Issue(int(row.id), row.campaign, row.due_at, language, subject))
        if len(found) >= limit:
            break
    return found
