"""Every table of the store, in one place (SQLAlchemy Core).

Sections follow the pipeline: audience, feeds, schedule, send, track, report. Times are timezone-aware
UTC datetimes. After a change here, run `python -m newsletter.store.migrations.regen` to rewrite the
initial migration (nothing has been released yet, so there is one migration), and the migration test
checks that migrations and these tables agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores text and forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc() -> UTCDateTime:
    return UTCDateTime()


# ---------------------------------------------------------------- audience: lists and subscribers

lists = Table(
    "lists",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", JSON, nullable=False),  # {lang: display name}
    Column("description", JSON, nullable=False),  # {lang: text}
    Column("languages", JSON, nullable=False),  # [lang, ...]
    Column("default_language", String(16), nullable=False),
    Column("double_opt_in", Boolean, nullable=False, default=True),
    Column("sender_name", String(200), nullable=False),
    Column("sender_email", String(320), nullable=False),
    Column("postal_address", Text, nullable=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("source_file", String(500), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),  # false when its YAML file is gone
    Column("synced_at", utc(), nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised: see audience.normalize_email
    Column("name", String(200), nullable=False, default=""),
    Column("language", String(16), nullable=False),
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("country", String(2), nullable=False, default=""),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)
Index("ix_subscribers_language", subscribers.c.language)

SUBSCRIPTION_STATUSES = ("unconfirmed", "confirmed", "unsubscribed", "bounced", "complained")
# Statuses a re-import or re-subscribe must never turn back into "confirmed".
SUPPRESSED_STATUSES = ("unsubscribed", "bounced", "complained")

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", Id, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("soft_bounces", Integer, nullable=False, default=0),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)
Index("ix_subscriptions_list_status", subscriptions.c.list_id, subscriptions.c.status)

consents = Table(
    "consents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("list_id", Id, ForeignKey("lists.id", ondelete="CASCADE"), nullable=True),
    Column("action", String(32), nullable=False),  # subscribe, confirm, unsubscribe, import, bounce...
    Column("source", String(64), nullable=False),  # import, form, admin, webhook, cli, one-click
    Column("detail", String(500), nullable=False, default=""),  # form name, import file, reason
    Column("ip", String(64), nullable=False, default=""),
    Column("at", utc(), nullable=False),
)
Index("ix_consents_subscriber", consents.c.subscriber_id)

# Addresses never to be mailed again, kept as a SHA-256 of the normalised address, so a forgotten
# person leaves no readable trace but is still suppressed.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(32), nullable=False),  # forgotten, bounced, complained, unsubscribed
    Column("created_at", utc(), nullable=False),
)
# A claim rechecks only the addresses suppressed since its occurrence was enqueued (send.ledger).
Index("ix_suppressions_created", suppressions.c.created_at)

# Who registered for a webinar (or one session of it), from the platform's export. A registrant who
# is not a subscriber has a `subscribers` row with no subscription: reached only by audiences with
# `registered_for:`, never by a list. `session` is "" for a registration to the whole event.
registrations = Table(
    "registrations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("event_id", String(100), nullable=False),
    Column("session", String(100), nullable=False, default=""),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("approval", String(32), nullable=False, default="approved"),  # approved pending denied
    Column("registered_at", utc(), nullable=True),  # the platform's registration time
    Column("source", String(500), nullable=False, default=""),  # the import file
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
    UniqueConstraint("event_id", "session", "subscriber_id"),
)
Index("ix_registrations_subscriber", registrations.c.subscriber_id)

# ---------------------------------------------------------------- feeds: hub updates

feeds = Table(
    "feeds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("language", String(16), nullable=True),  # null: from the feed
    Column("categories", JSON, nullable=False, default=list),  # filter; empty: everything
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("permanent_url", Text, nullable=True),  # where a 301/308 sent us
    Column("disabled_reason", Text, nullable=True),
    Column("warning", Text, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_success_at", utc(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", utc(), nullable=True),
    Column("seeded", Boolean, nullable=False, default=False),  # first pull done: later items are new
    Column("seeded_at", utc(), nullable=True),  # items published before this are never news
    Column("active", Boolean, nullable=False, default=True),  # false when no longer declared
    Column("created_at", utc(), nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("feed_id", Id, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("guid_key", String(80), nullable=False),  # "guid:" | "link:" | "hash:" + SHA-256, see feeds.parse
    Column("guid", Text, nullable=True),  # the feed's own id, for people reading the table
    Column("title", Text, nullable=False, default=""),
    Column("link", Text, nullable=False, default=""),
    Column("summary_html", Text, nullable=False, default=""),
    Column("content_html", Text, nullable=False, default=""),
    Column("author", Text, nullable=False, default=""),
    Column("published_at", utc(), nullable=True),
    Column("updated_at", utc(), nullable=True),
    Column("language", String(16), nullable=True),
    Column("categories", JSON, nullable=False, default=list),
    Column("image_url", Text, nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen_at", utc(), nullable=False),
    Column("changed_at", utc(), nullable=False),
    Column("seeded", Boolean, nullable=False, default=False),  # already there at the first pull
    UniqueConstraint("feed_id", "guid_key"),
)
Index("ix_items_first_seen", items.c.first_seen_at)

# One row per (item, lowercased category): lets digests filter by category in SQL on both backends.
item_categories = Table(
    "item_categories",
    metadata,
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("category", String(200), primary_key=True),
)
Index("ix_item_categories_category", item_categories.c.category)

# ---------------------------------------------------------------- schedule: occurrences of campaigns

# One row per planned send (campaign x event/session x time). `key` is unique, so an occurrence
# fires at most once across restarts and reconciles.
occurrences = Table(
    "occurrences",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("campaign", String(100), nullable=False),
    Column("event_id", String(100), nullable=True),
    Column("session", String(100), nullable=True),
    Column("due_at", utc(), nullable=False),
    Column("status", String(16), nullable=False),  # scheduled paused cancelled sending sent missed failed
    Column("reason", Text, nullable=False, default=""),
    Column("languages", JSON, nullable=False, default=list),
    Column("template", String(100), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default="UTC"),  # the event's zone, for local times
    Column("why", Text, nullable=False, default=""),  # the trigger, e.g. "1d before each session of X"
    Column("not_after", utc(), nullable=True),  # reminders: never sent at or after the event's start
    # When the scheduler fires it: due_at is the trigger's instant (each subscriber's local time is
    # computed from it); with local_time or quiet hours the first subscriber's time may come earlier.
    Column("fire_at", utc(), nullable=True),  # null: at due_at
    Column("late_by", Integer, nullable=False, default=21600),  # seconds an overdue send may still go
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)
Index("ix_occurrences_due", occurrences.c.status, occurrences.c.due_at)

# ---------------------------------------------------------------- schedule: composed campaigns

# One row per composed campaign: `revision` is its latest saved revision, the version every edit must
# be based on (optimistic concurrency: a save based on an older revision is refused, never merged).
composed_campaigns = Table(
    "composed_campaigns",
    metadata,
    Column("id", String(100), primary_key=True),  # the campaign id, unique across file and store
    Column("revision", Integer, nullable=False),
    Column("created_at", utc(), nullable=False),
    Column("created_by", String(320), nullable=False),
)

# Every save is a new revision, never an update: who, when, and the whole campaign as its
# schedules.yaml entry plus the texts per language. `status` is draft, scheduled or unscheduled; the
# live campaign is the latest revision that is not a draft, when it is scheduled.
composed_revisions = Table(
    "composed_revisions",
    metadata,
    Column("campaign", String(100), ForeignKey("composed_campaigns.id"), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("entry", JSON, nullable=False),  # the schedules.yaml entry (id, template, audience, trigger...)
    Column("texts", JSON, nullable=False),  # {lang: {subject, preheader, body, source, source_hash}}
    Column("saved_at", utc(), nullable=False),
    Column("saved_by", String(320), nullable=False),
)

# What the public calendar files published for each event and session (iCalendar UID): the
# fingerprint of its times and state, and the SEQUENCE that goes with it, raised when they change so
# calendar apps update the entry instead of adding a second one. `start`/`end` as published.
calendar_entries = Table(
    "calendar_entries",
    metadata,
    Column("uid", String(300), primary_key=True),
    Column("event_id", String(100), nullable=False),
    Column("session", String(100), nullable=False, default=""),
    Column("fingerprint", String(64), nullable=False),
    Column("sequence", Integer, nullable=False, default=0),
    Column("start", utc(), nullable=False),
    Column("end", utc(), nullable=True),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("first_published_at", utc(), nullable=False),
    Column("changed_at", utc(), nullable=False),
)

# ---------------------------------------------------------------- send: the ledger

# One row per occurrence being enqueued: the keyset cursor lets an interrupted enqueue resume, and
# workers claim an occurrence's rows only once its plan is `ready` (the audience is all in).
send_plans = Table(
    "send_plans",
    metadata,
    Column("occurrence_id", Id, ForeignKey("occurrences.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),  # enqueuing ready done
    Column("lists", JSON, nullable=False, default=list),  # the audience's lists, rechecked at claim time
    Column("registered_for", JSON, nullable=False, default=list),  # likewise its registered_for targets
    Column("last_subscriber_id", Id, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("suppressed", Integer, nullable=False, default=0),
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)

send_batches = Table(
    "send_batches",
    metadata,
    Column("id", Id, primary_key=True),
    Column("occurrence_id", Id, ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False),
    Column("language", String(16), nullable=False),
    Column("transport", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # claimed in_flight sent failed in_doubt released
    Column("worker", String(100), nullable=False, default=""),  # host:pid[:name]
    Column("lease_until", utc(), nullable=True),  # after this, another worker may take it over
    Column("attempts", Integer, nullable=False, default=0),
    Column("size", Integer, nullable=False, default=0),
    Column("provider_id", String(200), nullable=True),  # X-Message-Id
    Column("error", Text, nullable=True),
    Column("decided_by", String(200), nullable=True),  # how an in-doubt batch was resolved
    Column("created_at", utc(), nullable=False),
    Column("updated_at", utc(), nullable=False),
)
Index("ix_send_batches_status", send_batches.c.status, send_batches.c.lease_until)

sends = Table(
    "sends",
    metadata,
    Column("id", Id, primary_key=True),
    Column("occurrence_id", Id, ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True),
    Column("email", String(320), nullable=False),
    Column("language", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # pending claimed in_flight sent failed in_doubt suppressed
    # No foreign key: a claim sets batch_id on a whole batch of rows, and the key's per-row check
    # (a trigger query on PostgreSQL) cost as much as the update itself. Batches are only ever
    # deleted with their occurrence, whose rows go with it (occurrence_id's cascade).
    Column("batch_id", Id, nullable=True),
    Column("provider_message_id", String(200), nullable=True),
    Column("error", Text, nullable=True),
    Column("not_before", utc(), nullable=True),  # send at a local hour: not claimed before this
    Column("created_at", utc(), nullable=False),
    Column("sent_at", utc(), nullable=True),
    # One row per person and occurrence (the enqueue's ON CONFLICT), subscriber first: it is also how
    # a person's sends are found (behavioural segments, forgetting, their data), with no index of
    # subscriber_id alone. On PostgreSQL every claim writes a new version of each row into every index
    # of `sends`, so each index fewer is a write fewer per message (22 vs 33 us per row measured).
    UniqueConstraint("subscriber_id", "occurrence_id"),
)
# Claims read the pending rows (batch_id NULL) of one (occurrence, language) in id order: one index
# range, whatever the statistics say (on stale ones PostgreSQL otherwise walks the primary key past
# every row already sent). A batch's rows are one range of it too, (occurrence, status, language,
# batch): the rows of a batch settled whole keep `claimed` (store.sendstatus), and a batch must not
# walk past every earlier one's.
Index("ix_sends_claim", sends.c.occurrence_id, sends.c.status, sends.c.language, sends.c.batch_id, sends.c.id)
# No index of batch_id alone: a batch's rows are one (occurrence, language), found through
# ix_sends_claim (send.ledger.of_batch), and every claim would otherwise update a third index.

# Rate limits shared by every worker of the store (send/quota.py). Times are epoch seconds (Float):
# workers compare them with their own clocks, so hosts sharing a store keep time with NTP.
send_pace = Table(
    "send_pace",
    metadata,
    Column("transport", String(16), primary_key=True),
    Column("tokens", Float, nullable=False),  # per-second bucket at `stamp`; below 0: reserved ahead
    Column("stamp", Float, nullable=False),
)

send_grants = Table(
    "send_grants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("transport", String(16), nullable=False),
    Column("at", Float, nullable=False),  # when these messages may go (the sliding hour counts them)
    Column("messages", Integer, nullable=False),
)
Index("ix_send_grants_transport_at", send_grants.c.transport, send_grants.c.at)

# ---------------------------------------------------------------- track: links and hits

links = Table(
    "links",
    metadata,
    Column("id", Id, primary_key=True),
    Column("occurrence_id", Id, ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=True),
    Column("campaign", String(100), nullable=False),
    Column("language", String(16), nullable=False),
    Column("url", Text, nullable=False),  # the final URL, UTM parameters included
    Column("label", String(100), nullable=False, default=""),
    Column("created_at", utc(), nullable=False),
)
Index("ix_links_occurrence", links.c.occurrence_id)

EVENT_KINDS = (
    "processed",
    "delivered",
    "deferred",
    "bounce",
    "dropped",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
    "conversion",
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("source", String(16), nullable=False),  # pixel, redirect, sendgrid, form
    Column("occurrence_id", Id, nullable=True),
    Column("send_id", Id, nullable=True),
    Column("subscriber_id", Id, nullable=True),
    Column("link_id", Id, nullable=True),
    Column("campaign", String(100), nullable=True),
    Column("language", String(16), nullable=True),
    Column("label", String(100), nullable=True),
    Column("machine", Boolean, nullable=False, default=False),  # machine open / suspected bot click
    Column("user_agent", Text, nullable=False, default=""),
    Column("ip", String(64), nullable=False, default=""),
    Column("sg_event_id", String(100), nullable=True),
    Column("data", JSON, nullable=True),
    Column("at", utc(), nullable=False),
)
Index("ix_events_occurrence_kind", events.c.occurrence_id, events.c.kind)
Index("ix_events_send", events.c.send_id)
# SendGrid's event id, for the webhook's dedupe. Partial: opens and clicks of our own links (nearly
# every row) have none and so cost this index nothing.
Index(
    "uq_events_sg_event_id",
    events.c.sg_event_id,
    unique=True,
    sqlite_where=events.c.sg_event_id.isnot(None),
    postgresql_where=events.c.sg_event_id.isnot(None),
)

# ---------------------------------------------------------------- report: dashboard users

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # staff, organiser
    Column("password_hash", Text, nullable=False),
    Column("created_at", utc(), nullable=False),
    # The dashboard's language (one of the site's); empty: the browser's Accept-Language decides.
    Column("language", String(16), nullable=False, default="", server_default=""),
)

# Every staff action (`newsletter.audit.record`): who, when, what, from which command or page.
# `subject_hash` is the email_hash of the person an action concerns, so forgetting them can strip
# their address from the entry while the entry itself stays.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", utc(), nullable=False),
    Column("actor", String(320), nullable=False),  # a dashboard user's email, or cli:<os user>
    Column("action", String(64), nullable=False),  # send, test-send, pause, import, forget...
    Column("target", String(500), nullable=False, default=""),  # campaign, occurrence, list, address
    Column("details", JSON, nullable=False, default=dict),
    Column(
        "via", String(500), nullable=False, default=""
    ),  # "cli: newsletter send ...", "web: POST /admin/..."
    Column("subject_hash", String(64), nullable=True),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_subject_hash", audit_log.c.subject_hash)

# Attempts under rate limits that must hold across app instances (`newsletter.ratelimit`): failed
# dashboard logins per "login-email:" / "login-ip:" key, subscribe-form posts per "subscribe-ip:" key.
# Each row expires on its own, so limits with different windows share the table.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(400), nullable=False),
    Column("expires", utc(), nullable=False),
)
Index("ix_attempts_key_expires", attempts.c.key, attempts.c.expires)

# ---------------------------------------------------------------- report: rollups of the events
# The campaign pages read these, never the raw events: `report.figures.refresh` folds in the events
# after `report_watermark.last_event_id`, so a page costs a few hundred rows at any event volume.

report_watermark = Table(
    "report_watermark",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("last_event_id", BigInteger, nullable=False, default=0),
    Column("refreshed_at", utc(), nullable=False),
)

# Counts per occurrence, language, scope ("" the whole message, "l:<link id>", "b:<label>"), event
# kind and UTC hour (hours since the epoch). raw: every event; uniq: first event per recipient.
report_counts = Table(
    "report_counts",
    metadata,
    Column("occurrence_id", Id, primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("scope", String(120), primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("hour", Integer, primary_key=True),
    Column("raw", Integer, nullable=False, default=0),
    Column("raw_human", Integer, nullable=False, default=0),
    Column("uniq", Integer, nullable=False, default=0),
    Column("uniq_human", Integer, nullable=False, default=0),
)

# Recipients already counted once per (occurrence, kind, scope); human=true rows count only events
# not flagged as machine. `who` is the send ledger row (or the subscriber, or -event id if anonymous).
report_seen = Table(
    "report_seen",
    metadata,
    Column("occurrence_id", Id, primary_key=True),
    Column("kind", String(24), primary_key=True),
    Column("scope", String(120), primary_key=True),
    Column("who", BigInteger, primary_key=True),
    Column("human", Boolean, primary_key=True),
    Column("language", String(16), nullable=False),
    Column("hour", Integer, nullable=False),
    Column("batch", BigInteger, nullable=False),  # the watermark of the refresh that added it
)
Index("ix_report_seen_batch", report_seen.c.batch)

# Ledger rows per status and language of occurrences whose sending is over (status "sent"), counted
# once: a campaign page then reads a few rows instead of counting 100,000 ledger rows per view.
report_sends = Table(
    "report_sends",
    metadata,
    Column("occurrence_id", Id, ForeignKey("occurrences.id", ondelete="CASCADE"), primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)


__all__ = [
    "metadata",
    "lists",
    "subscribers",
    "subscriptions",
    "consents",
    "suppressions",
    "registrations",
    "feeds",
    "items",
    "item_categories",
    "occurrences",
    "composed_campaigns",
    "composed_revisions",
    "calendar_entries",
    "send_plans",
    "send_batches",
    "sends",
    "links",
    "events",
    "users",
    "attempts",
    "report_watermark",
    "report_counts",
    "report_seen",
    "report_sends",
    "SUBSCRIPTION_STATUSES",
    "SUPPRESSED_STATUSES",
    "EVENT_KINDS",
]
