"""`schedules.yaml` -> Schedules: parsed and validated against its schema, every error at file:line:column.

All errors of a file are collected (a bad event does not hide a bad campaign) and raised together as
one ScheduleError. References are checked against the site: languages, lists (lists/*.yaml),
templates (templates/<name>.mjml) and events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from newsletter.audience.regions import REGIONS
from newsletter.campaign_content import Content, read_content
from newsletter.campaigns import Activity, Audience, Campaign, Event, Schedules, Session, Trigger
from newsletter.errors import ConfigError, ScheduleError, SourceError
from newsletter.schedule.times import parse_duration, parse_every, parse_hhmm, parse_local, zone
from newsletter.site import Site
from newsletter.yamlfile import Located, load_yaml

T = TypeVar("T")
ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
KINDS = ("webinar", "hlm", "deadline", "meeting", "conference", "other")
TOP_KEYS = {"events", "campaigns"}
EVENT_KEYS = {"id", "kind", "title", "description", "start", "end", "timezone", "location", "url"}
EVENT_KEYS |= {"sessions", "cancelled"}
SESSION_KEYS = {"id", "language", "start", "end", "timezone", "join_url", "registration_url", "title"}
CAMPAIGN_KEYS = {"id", "template", "audience", "languages", "subject", "preheader", "trigger"}
CAMPAIGN_KEYS |= {"local_time", "quiet_hours", "late_by", "missing_translation", "track", "utm"}
CAMPAIGN_KEYS |= {"categories", "content", "attach_ics", "archive"}
AUDIENCE_KEYS = {"lists", "languages", "countries", "regions", "attributes"}
AUDIENCE_KEYS |= {"registered_for", "not_registered_for"}
ACTIVITY_FIELDS = ("clicked", "not_clicked", "opened", "not_opened")
AUDIENCE_KEYS |= {*ACTIVITY_FIELDS, "converted", "within", "include_machine"}
TRIGGER_KEYS = {"before", "after", "event", "per_session", "every", "at", "timezone", "on_change"}
TRIGGER_KEYS |= {"only_if_new_items", "max_items"}


class _Parser:
    """Walks the YAML tree, collecting errors instead of stopping at the first."""

    def __init__(self, site: Site, path: str):
        self.site = site
        self.path = path
        self.errors: list[SourceError] = []
        self.contents: dict[str, Content] = {}  # texts that do not come from content/ (the store's)

    def fail(self, node: Located, key: str | None, message: str) -> None:
        self.errors.append(node.error(key, message))

    def where(self, node: Located) -> str:
        return f"{node.path}:{node.line}:{node.column}"

    def claim_id(self, node: Located, kind: str, ids: dict[str, str]) -> None:
        """Record the node's id in `ids` (id -> what holds it), or report it as taken."""
        ident = str(node.get("id", ""))
        if ident and ident in ids:
            self.fail(node, "id", f"duplicate id {ident!r}: already used by the {ids[ident]}")
        elif ident:
            ids[ident] = f"{kind} at {self.where(node)}"

    def mapping(self, value: Any, parent: Located, key: str, allowed: set[str]) -> Located | None:
        if not isinstance(value, Located):
            self.fail(parent, key, f"{key}: expected a mapping with {', '.join(sorted(allowed))}")
            return None
        for unknown in sorted(set(value) - allowed):
            self.fail(
                value, unknown, f"unknown field {unknown!r}; expected one of {', '.join(sorted(allowed))}"
            )
        return value

    def items(self, node: Located, key: str) -> list[Located]:
        value = node.get(key) or []
        if not isinstance(value, list):
            self.fail(node, key, f"{key}: expected a list of mappings (each item starting with '- id: ...')")
            return []
        out = []
        for item in value:
            if isinstance(item, Located):
                out.append(item)
            else:
                self.fail(node, key, f"{key}: item {item!r} is not a mapping; start each with '- id: ...'")
        return out

    def convert(self, node: Located, key: str, func: Callable[[Any], T]) -> T | None:
        """func(node[key]), or None with the error recorded at the key."""
        try:
            return func(node[key])
        except (ValueError, TypeError, KeyError, ConfigError) as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            self.fail(node, key, f"{key}: {message}")
            return None

    def required(self, node: Located, key: str, what: str) -> bool:
        if node.get(key) in (None, "", [], {}):
            self.fail(node, None if key not in node else key, f"missing {key!r}: {what}")
            return False
        return True

    def ident(self, node: Located, what: str) -> str | None:
        if not self.required(node, "id", f"every {what} needs an id, e.g. webinar-april"):
            return None
        value = str(node["id"])
        if not ID.match(value):
            self.fail(node, "id", f"id {value!r}: use lowercase letters, digits, '-', '_' or '.'")
            return None
        return value

    def language(self, node: Located, key: str, value: Any) -> str | None:
        try:
            return self.site.check_language(str(value), key)
        except ConfigError as exc:
            self.fail(node, key, str(exc))
            return None

    def languages(self, node: Located, key: str) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(node, key, f"{key}: expected a list of language codes such as [en, fr]")
            return ()
        found = (self.language(node, key, v) for v in value)
        return tuple(lang for lang in found if lang)

    def texts(self, node: Located, key: str) -> dict[str, str]:
        """A {lang: text} mapping (a bare string is the default language's)."""
        value = node.get(key)
        if value is None:
            return {}
        if isinstance(value, str):
            return {self.site.default_language: value}
        if not isinstance(value, dict):
            self.fail(node, key, f"{key}: expected text or a mapping of language to text, e.g. {{en: ...}}")
            return {}
        out = {}
        for lang, text in value.items():
            checked = self.language(value if isinstance(value, Located) else node, str(lang), lang)
            if checked:
                out[checked] = str(text)
        return out

    def timezone(self, node: Located, key: str = "timezone", default: str | None = None) -> str | None:
        if key not in node:
            if default is None:
                self.fail(node, None, f"missing {key!r}: an IANA zone such as Europe/London")
            return default
        return self.convert(node, key, lambda v: zone(str(v)).key)

    def flag(self, node: Located, key: str, default: bool) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            self.fail(node, key, f"{key}: expected true or false, got {value!r}")
            return default
        return value

    def strings(self, node: Located, key: str) -> tuple[str, ...]:
        value = node.get(key) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(node, key, f"{key}: expected a list, e.g. [a, b]")
            return ()
        return tuple(str(v) for v in value)

    # -- events
    def event(self, node: Located) -> Event | None:
        ok = self.mapping(node, node, "events", EVENT_KEYS) is not None
        ident = self.ident(node, "event")
        kind = str(node.get("kind", "other"))
        if kind not in KINDS:
            self.fail(node, "kind", f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        title = self.texts(node, "title")
        if not title:
            self.required(node, "title", "a title per language, e.g. {en: ..., fr: ...}")
        tz = self.timezone(node)
        start = end = None
        if self.required(node, "start", "a date and time, e.g. 2021-06-08T10:00") and tz:
            start = self.convert(node, "start", lambda v: parse_local(v, tz))
        if node.get("end") is not None and tz:
            end = self.convert(node, "end", lambda v: parse_local(v, tz))
            if start and end and end < start:
                self.fail(node, "end", f"end {node['end']} is before start {node['start']}")
        sessions = tuple(
            s for s in (self.session(item, tz) for item in self.items(node, "sessions")) if s is not None
        )
        self.unique(node, "sessions", [s.id for s in sessions], "session")
        if not (ok and ident and tz and start and title):
            return None
        return Event(
            id=ident,
            kind=kind,
            title=title,
            start=start,
            timezone=tz,
            end=end,
            description=self.texts(node, "description"),
            location=str(node.get("location", "")),
            url=str(node.get("url", "")),
            sessions=sessions,
            cancelled=self.flag(node, "cancelled", False),
            where=self.where(node),
        )

    def session(self, node: Located, event_tz: str | None) -> Session | None:
        self.mapping(node, node, "sessions", SESSION_KEYS)
        lang = self.language(node, "language", node["language"]) if "language" in node else None
        if lang is None and "language" not in node:
            self.fail(node, None, "missing 'language': the language this session is held in")
        ident = str(node.get("id") or lang or "")
        tz = self.timezone(node, default=event_tz or "UTC")
        start = end = None
        if "start" not in node or node.get("start") in (None, ""):
            self.fail(node, None, f"session {ident!r} has no time: add start, e.g. start: 2021-04-21T14:00")
        elif tz:
            start = self.convert(node, "start", lambda v: parse_local(v, tz))
        if node.get("end") is not None and tz:
            end = self.convert(node, "end", lambda v: parse_local(v, tz))
        if not (lang and ident and tz and start):
            return None
        return Session(
            id=ident,
            language=lang,
            start=start,
            timezone=tz,
            end=end,
            join_url=str(node.get("join_url", "")),
            registration_url=str(node.get("registration_url", "")),
            title=self.texts(node, "title"),
        )

    def unique(self, node: Located, key: str, ids: list[str], what: str) -> None:
        seen: set[str] = set()
        for ident in ids:
            if ident in seen:
                self.fail(node, key, f"duplicate {what} id {ident!r}; ids must be unique")
            seen.add(ident)

    # -- campaigns
    def campaign(self, node: Located, ctx: _Context) -> Campaign | None:
        self.mapping(node, node, "campaigns", CAMPAIGN_KEYS)
        ident = self.ident(node, "campaign")
        template = None
        content = self.content(node) if "content" in node else None
        if content is not None and "template" not in node and "message" in ctx.templates:
            template = "message"
        elif self.required(node, "template", f"one of {', '.join(ctx.templates) or 'templates/*.mjml'}"):
            template = str(node["template"])
            if template not in ctx.templates:
                known = ", ".join(ctx.templates) or "none yet"
                self.fail(
                    node,
                    "template",
                    f"unknown template {template!r}: no {self.site.templates_dir}/{template}.mjml "
                    f"(templates: {known})",
                )
        # A change notice goes to those who were reminded: it may name no list.
        trigger_node = node.get("trigger")
        notice = isinstance(trigger_node, dict) and "on_change" in trigger_node
        audience = None
        if notice and node.get("audience") in (None, {}):
            audience = Audience(lists=())
        elif self.required(node, "audience", "lists: [...]"):
            audience = self.audience(node, ctx, lists_optional=notice)
        languages = self.languages(node, "languages") or self.site.languages
        trigger = self.trigger(node, ctx) if self.required(node, "trigger", "before/after/every/at") else None
        local_time = (
            self.convert(node, "local_time", lambda v: parse_hhmm(v)) if "local_time" in node else None
        )
        quiet = None
        if "quiet_hours" in node:
            quiet = self.convert(node, "quiet_hours", _quiet_hours)
        late_by = timedelta(hours=6)
        if "late_by" in node:
            late_by = self.convert(node, "late_by", parse_duration) or late_by
        missing = str(node.get("missing_translation", "fallback"))
        if missing not in ("fallback", "block"):
            self.fail(node, "missing_translation", f"missing_translation {missing!r}: fallback or block")
        if not (ident and template and audience and trigger):
            return None
        return Campaign(
            id=ident,
            template=template,
            audience=audience,
            trigger=trigger,
            languages=languages,
            subject=self.texts(node, "subject"),
            preheader=self.texts(node, "preheader"),
            local_time=local_time,
            quiet_hours=quiet,
            late_by=late_by,
            missing_translation="block" if missing == "block" else "fallback",
            track=self.flag(node, "track", True),
            utm=self.flag(node, "utm", True),
            categories=self.strings(node, "categories"),
            content=content,
            attach_ics=self.flag(node, "attach_ics", False),
            archive=self.flag(node, "archive", False),
            where=self.where(node),
        )

    def content(self, node: Located) -> Content | None:
        """`content: NAME` -> the texts in content/NAME/<lang>.md, each file's errors reported."""
        name = str(node["content"])
        if name in self.contents:
            return self.contents[name]
        directory = self.site.content_dir / name
        if not ID.match(name) or not directory.is_dir():
            self.fail(node, "content", f"content {name!r}: no folder {directory} (one <lang>.md a language)")
            return None
        found, errors = read_content(directory, name, self.site.default_language)
        self.errors.extend(errors)
        for language, text in found.texts.items():
            if language not in self.site.languages:
                self.errors.append(
                    SourceError(
                        text.where,
                        None,
                        None,
                        f"unknown language {language!r}; this site offers "
                        f"{', '.join(self.site.languages)} (name files <lang>.md)",
                    )
                )
        if found.source not in found.texts:
            self.fail(node, "content", f"content {name!r}: no {found.source}.md (the source language's text)")
            return None
        return found

    def audience(self, parent: Located, ctx: _Context, lists_optional: bool = False) -> Audience | None:
        node = self.mapping(parent["audience"], parent, "audience", AUDIENCE_KEYS)
        if node is None:
            return None
        lists = self.strings(node, "lists")
        registered_for = self.registration_targets(node, "registered_for", ctx)
        if not lists and not registered_for and not lists_optional:
            self.fail(
                node, None, f"audience: missing 'lists' (lists: {', '.join(ctx.lists)}) or 'registered_for'"
            )
        for slug in lists:
            if slug not in ctx.lists:
                self.fail(node, "lists", f"unknown list {slug!r}; lists: {', '.join(ctx.lists) or 'none'}")
        regions = tuple(r.upper() for r in self.strings(node, "regions"))
        for region in regions:
            if region not in REGIONS:
                self.fail(node, "regions", f"unknown region {region!r}; regions: {', '.join(REGIONS)}")
        countries = tuple(c.upper() for c in self.strings(node, "countries"))
        for country in countries:
            if not re.match(r"^[A-Z]{2}$", country):
                self.fail(node, "countries", f"country {country!r}: use ISO 3166 alpha-2 codes such as UA")
        attributes = node.get("attributes") or {}
        if not isinstance(attributes, dict):
            self.fail(node, "attributes", "attributes: expected a mapping such as {network: EHRA}")
            attributes = {}
        activities = {key: self.activity(node, key, ctx) for key in ACTIVITY_FIELDS if key in node}
        converted = None
        if "converted" in node:
            converted = self.flag(node, "converted", False)
        within = self.convert(node, "within", parse_duration) if "within" in node else None
        if within is not None and not activities and converted is None:
            self.fail(node, "within", "within: applies to clicked, opened, not_opened, ... (none given)")
        return Audience(
            lists=lists,
            languages=self.languages(node, "languages"),
            countries=countries,
            regions=regions,
            attributes={str(k): str(v) for k, v in attributes.items()},
            registered_for=registered_for,
            not_registered_for=self.registration_targets(node, "not_registered_for", ctx),
            converted=converted,
            within=within,
            include_machine=self.flag(node, "include_machine", False),
            **activities,  # type: ignore[arg-type]
        )

    def registration_targets(self, node: Located, key: str, ctx: _Context) -> tuple[str, ...]:
        """`webinar-april` or `webinar-april/fr` (or a list of them), each an event or one of its sessions."""
        out = []
        for target in self.strings(node, key):
            event_id, _, session_id = target.partition("/")
            event = ctx.events.get(event_id)
            if event is None:
                if event_id not in ctx.broken_events:
                    self.fail(
                        node, key, f"{key}: unknown event {event_id!r}; events: {', '.join(ctx.events)}"
                    )
                continue
            if session_id and event.session(session_id) is None:
                sessions = ", ".join(s.id for s in event.sessions) or "none"
                self.fail(
                    node,
                    key,
                    f"{key}: event {event_id!r} has no session {session_id!r} (sessions: {sessions})",
                )
                continue
            out.append(target)
        return tuple(out)

    def activity(self, parent: Located, key: str, ctx: _Context) -> Activity | None:
        """`clicked: {label: declaration-sign-on, campaigns: [signon-14d]}`; `true` or `{}`: any."""
        value = parent[key]
        if value is True or value == {}:
            return Activity()
        allowed = {"label", "campaigns"} if "clicked" in key else {"campaigns"}
        node = self.mapping(value, parent, key, allowed)
        if node is None:
            return None
        campaigns = self.strings(node, "campaigns")
        for name in campaigns:
            if name not in ctx.campaign_ids:
                known = ", ".join(sorted(ctx.campaign_ids)) or "none"
                self.fail(node, "campaigns", f"{key}: unknown campaign {name!r}; campaigns: {known}")
        return Activity(label=str(node.get("label") or ""), campaigns=campaigns)

    def trigger(self, parent: Located, ctx: _Context) -> Trigger | None:
        node = self.mapping(parent["trigger"], parent, "trigger", TRIGGER_KEYS)
        if node is None:
            return None
        kinds = [k for k in ("before", "after", "every", "at", "on_change") if k in node]
        if len(kinds) != 1:
            self.fail(node, None, "trigger: give exactly one of before, after, every, at or on_change")
            return None
        kind = kinds[0]
        if kind == "on_change":
            return self.on_change(node, ctx)
        common = {
            "only_if_new_items": self.flag(node, "only_if_new_items", False),
            "max_items": self.convert(node, "max_items", _positive) if "max_items" in node else 10,
        }
        if kind in ("before", "after"):
            offset = self.convert(node, kind, parse_duration)
            if offset is not None and kind == "before" and offset <= timedelta(0):
                self.fail(node, kind, "before: must be longer than 0m")
            event_id = str(node.get("event", ""))
            if not event_id:
                self.fail(node, None, f"trigger {kind}: missing 'event' (events: {', '.join(ctx.events)})")
            elif event_id not in ctx.events and event_id not in ctx.broken_events:
                self.fail(node, "event", f"unknown event {event_id!r}; events: {', '.join(ctx.events)}")
            per_session = self.flag(node, "per_session", False)
            if per_session and event_id in ctx.events and not ctx.events[event_id].sessions:
                self.fail(node, "per_session", f"per_session: event {event_id!r} has no sessions")
            if offset is None or event_id not in ctx.events:
                return None
            return Trigger(kind, event=event_id, offset=offset, per_session=per_session, **common)  # type: ignore[arg-type]
        if kind == "every":
            every = self.convert(node, "every", parse_every)
            if every is None:
                return None
            return Trigger("every", every=str(node["every"]), timezone=every.timezone, **common)  # type: ignore[arg-type]
        tz = self.timezone(node, default="UTC") or "UTC"
        at = self.convert(node, "at", lambda v: parse_local(v, tz))
        return Trigger("at", at=at, timezone=tz, **common) if at else None  # type: ignore[arg-type]

    def on_change(self, node: Located, ctx: _Context) -> Trigger | None:
        """`{on_change: webinar-april, per_session: true}`: tell those reminded when the event moves."""
        event_id = str(node.get("on_change") or "")
        if event_id not in ctx.events:
            if event_id not in ctx.broken_events:
                events = ", ".join(ctx.events)
                self.fail(node, "on_change", f"on_change: unknown event {event_id!r}; events: {events}")
            return None
        per_session = self.flag(node, "per_session", False)
        if per_session and not ctx.events[event_id].sessions:
            self.fail(node, "per_session", f"per_session: event {event_id!r} has no sessions")
            return None
        return Trigger("on_change", event=event_id, per_session=per_session)


class _Context:
    """What campaigns may refer to."""

    def __init__(self, events: dict[str, Event], lists: list[str], templates: list[str]):
        self.events = events
        self.broken_events: set[str] = set()  # declared but invalid: their own errors say why
        self.campaign_ids: set[str] = set()  # every campaign id in the file, for segments
        self.lists = lists
        self.templates = templates


def _quiet_hours(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("expected [FROM, TO], e.g. ['22:00', '07:00']")
    return parse_hhmm(value[0]), parse_hhmm(value[1])


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def site_templates(site: Site) -> list[str]:
    return sorted(p.stem for p in site.templates_dir.glob("*.mjml")) if site.templates_dir.is_dir() else []


def site_lists(site: Site) -> list[str]:
    from newsletter.audience.lists import load_lists

    return sorted(m.slug for m in load_lists(site).lists)


def parse_schedules(site: Site, text: str | None = None) -> Schedules:
    """Parse the site's schedules.yaml (or `text` in its place); ScheduleError lists every error."""
    path = site.schedules_file
    if text is None and not path.exists():
        return Schedules(events={}, campaigns={}, source=str(path))
    data = load_yaml(path, text)
    if data is None:
        return Schedules(events={}, campaigns={}, source=str(path))
    if not isinstance(data, Located):
        raise ScheduleError([SourceError(path, 1, 1, "expected a mapping with events: and campaigns:")])
    parser = _Parser(site, str(path))
    parser.mapping(data, data, "schedules.yaml", TOP_KEYS)
    event_nodes = parser.items(data, "events")
    campaign_nodes = parser.items(data, "campaigns")
    events: dict[str, Event] = {}
    ids: dict[str, str] = {}  # every id, events and campaigns: one namespace, so `send X` is unambiguous
    for node in event_nodes:
        event = parser.event(node)
        parser.claim_id(node, "event", ids)
        if event and event.id not in events:
            events[event.id] = event
    ctx = _Context(events, site_lists(site), site_templates(site))
    ctx.broken_events = {str(node.get("id")) for node in event_nodes} - set(events)
    ctx.campaign_ids = {str(node.get("id")) for node in campaign_nodes if node.get("id")}
    campaigns: dict[str, Campaign] = {}
    for node in campaign_nodes:
        campaign = parser.campaign(node, ctx)
        parser.claim_id(node, "campaign", ids)
        if campaign and campaign.id not in campaigns:
            campaigns[campaign.id] = campaign
    if parser.errors:
        raise ScheduleError(parser.errors)
    return Schedules(events=events, campaigns=campaigns, source=str(path))


def parse_entry(
    site: Site, entry: dict[str, Any], events: dict[str, Event], content: Content, where: str
) -> tuple[Campaign | None, list[SourceError]]:
    """One campaign entry from elsewhere than schedules.yaml (the store), checked exactly like the file's."""
    import yaml

    data = load_yaml(where, yaml.safe_dump({"campaigns": [entry]}, allow_unicode=True, sort_keys=False))
    parser = _Parser(site, where)
    parser.contents[content.name] = content
    ctx = _Context(events, site_lists(site), site_templates(site))
    nodes = parser.items(data, "campaigns")
    campaign = parser.campaign(nodes[0], ctx) if nodes else None
    return (None if parser.errors else campaign), parser.errors


def load_schedules(site: Site) -> Schedules:
    """The site's schedules.yaml as Schedules; ScheduleError (a ConfigError) lists every problem."""
    try:
        return parse_schedules(site)
    except ScheduleError:
        raise
    except SourceError as exc:  # YAML syntax: one error, already located
        raise ScheduleError([exc]) from None


class FileSource:
    """The campaigns and events of the site's `schedules.yaml` (a CampaignSource)."""

    name = "schedules.yaml"

    def __init__(self, site: Site):
        self.site = site

    def load(self) -> Schedules:
        return load_schedules(self.site)

    def stamp(self) -> object:
        """schedules.yaml's and every content/*/*.md file's mtime and size (texts are loaded with it)."""
        paths = [self.site.schedules_file]
        if self.site.content_dir.is_dir():
            paths.extend(sorted(self.site.content_dir.glob("*/*.md")))
        stamps: list[tuple[str, int, int] | None] = []
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                stamps.append(None)
                continue
            stamps.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(stamps)
